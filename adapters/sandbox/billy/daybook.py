"""`/v2/daybookTransactions`: journal entries in the daybook, balanced in every currency."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Final

from subledger.adapters.sandbox.accounting import BASE_CURRENCY
from subledger.adapters.sandbox.billy.envelope import MISSING, Fields, extras, field_names, raise_if
from subledger.adapters.sandbox.billy.state import (
    INVOICE_STATES,
    BillyData,
    Changes,
    insert,
    new_id,
    now_text,
    wire,
)
from subledger.adapters.sandbox.fields import Money, Record, exponent_of

DESCRIPTION_MAX_LENGTH: Final = 100

JOURNAL_SIDES: Final = ("debit", "credit")

TRANSACTION_FIELDS: Final = field_names(
    "id daybookId entryDate voucherNo description extendedDescription apiType state "
    "isVoided lines createdTime"
)
JOURNAL_LINE_FIELDS: Final = field_names("id accountId accountNo amount side text currencyId")


def create_transaction(data: BillyData, body: Mapping[str, Any]) -> Changes:
    """A journal entry; its debits must equal its credits in every currency."""
    errors: dict[str, str] = {}
    f = Fields(body, errors)
    transaction: Record = {
        "id": new_id(),
        "daybookId": f.reference(
            "daybookId", data.tables["daybooks"], "daybook", default=data.daybook_id
        ),
        "entryDate": f.day_text("entryDate", required=True),
        "voucherNo": f.text("voucherNo", numbers=True),
        "description": f.text("description", max_length=DESCRIPTION_MAX_LENGTH),
        "extendedDescription": f.text("extendedDescription"),
        "apiType": f.text("apiType"),
        "state": f.choice("state", INVOICE_STATES, default="draft"),
        "isVoided": False,
        "lines": _read_journal_lines(data, f),
        "createdTime": now_text(),
    }
    raise_if(errors, "daybookTransaction")
    transaction.update(extras(body, TRANSACTION_FIELDS))
    insert(data.tables["daybookTransactions"], transaction)
    return Changes().touch("daybookTransactions", transaction["id"])


def _read_journal_lines(data: BillyData, f: Fields) -> list[Record]:
    accounts_by_no = data.accounts_by_no()
    lines = [
        _read_journal_line(data, accounts_by_no, f.nested(line, f"lines[{i}]."))
        for i, line in enumerate(f.objects("lines", required=True) or [])
    ]
    if not any(name.startswith(f"{f.prefix}lines[") for name in f.errors):
        _check_balanced(f, lines)
    return lines


def _read_journal_line(data: BillyData, accounts_by_no: Mapping[int, Record], f: Fields) -> Record:
    """One line: its amount is whole minor units of its currency (DKK when left out)."""
    account = _journal_account(data, accounts_by_no, f)
    currency = f.currency("currencyId", default=BASE_CURRENCY)
    exponent = exponent_of(currency)
    amount = f.money(
        "amount", required=True, minimum=0, positive=True, exponent=exponent, whole=True
    )
    line = {
        "id": new_id(),
        "accountId": account["id"] if account else None,
        "accountNo": account["accountNo"] if account else None,
        "amount": Money(amount or 0, exponent),
        "side": f.choice("side", JOURNAL_SIDES, required=True),
        "text": f.text("text"),
        "currencyId": currency,
    }
    return {**line, **extras(f.data, JOURNAL_LINE_FIELDS)}


def _journal_account(
    data: BillyData, accounts_by_no: Mapping[int, Record], f: Fields
) -> Record | None:
    """The account a line names by `accountId` or `accountNo` (a whole number, as accounts
    carry it); both must agree if given."""
    by_id = f.record("accountId", data.tables["accounts"], "account")
    number = f.integer("accountNo")
    if not f.given("accountNo"):
        if not f.given("accountId"):
            f.fail("accountId", "an accountId or an accountNo is required")
        return by_id
    if number is None:
        return None
    by_no = accounts_by_no.get(number)
    if by_no is None:
        f.fail("accountNo", f"refers to no account (no account has the number {number})")
    elif by_id is not None and by_id is not by_no:
        f.fail("accountNo", "is not the number of the account accountId names")
    return by_no


def _check_balanced(f: Fields, lines: Iterable[Record]) -> None:
    sums: dict[str, Counter[str]] = {}
    for line in lines:
        sums.setdefault(line["currencyId"], Counter())[line["side"]] += line["amount"].minor
    for currency, sides in sums.items():
        if sides["debit"] != sides["credit"]:
            debit, credit = (
                Money(sides[side], exponent_of(currency)).major for side in JOURNAL_SIDES
            )
            f.fail("lines", f"debits ({debit}) and credits ({credit}) in {currency} must be equal")


def update_transaction(data: BillyData, transaction: Record, body: Mapping[str, Any]) -> Changes:
    """Only approving (draft -> approved) and voiding (`isVoided: true` or `state: voided`,
    for good) change a transaction; fields sent as they are change nothing."""
    current = wire(transaction)
    errors: dict[str, str] = {}
    target = _transaction_target(transaction, body, errors)
    for name, value in body.items():
        if name not in ("state", "isVoided") and current.get(name, MISSING) != value:
            errors[name] = "cannot change; only state and isVoided can"
    raise_if(errors, "daybookTransaction")
    transaction["state"] = target
    transaction["isVoided"] = target == "voided"
    return Changes().touch("daybookTransactions", transaction["id"])


def _transaction_target(
    transaction: Record, body: Mapping[str, Any], errors: dict[str, str]
) -> str:
    """The state a PUT asks for: draft, approved or voided."""
    state = transaction["state"]
    target = state
    if body.get("isVoided") is True:
        target = "voided"
    elif body.get("isVoided") not in (None, False):
        errors["isVoided"] = "must be true or false"
    elif body.get("isVoided") is False and state == "voided":
        errors["isVoided"] = "a voided transaction cannot be restored"
    asked = body.get("state")
    if asked is not None and asked != state:
        if asked not in (*INVOICE_STATES, "voided"):
            errors["state"] = "must be one of draft, approved, voided"
        elif state == "voided" or (state == "approved" and asked == "draft"):
            errors["state"] = f"cannot go from {state} to {asked}"
        elif target != "voided":
            target = asked
    return str(target)
