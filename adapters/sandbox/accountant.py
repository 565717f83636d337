"""The accountant's side of both sandboxes: a payment registered, or taken back, by a person at
Billy or Dinero (a bank reconciliation there), through `POST /_sandbox/payments` and
`DELETE /_sandbox/payments/{id}` (docs/sandboxes.md). The shape of the body is checked here,
alike for both; the values are then checked by each sandbox's own payment rules.

A payment of an invoice in a foreign currency is registered as a person registers it: at the
rate the bank converted it at, `exchange_rate` (units of the account's currency, kroner, per
unit of the invoice's currency). Billy takes it as the bank payment's `cashExchangeRate`,
which it requires when the cash account's currency is not the invoice's; Dinero's kroner
`Amount` is worked out at it (else at the invoice's own rate)."""

from __future__ import annotations

from typing import Any, Final

from subledger.adapters.sandbox.fields import exact_number

ACCOUNTANT_FIELDS: Final = ("invoice", "amount", "date", "account", "refund", "exchange_rate")
ACCOUNTANT_REQUIRED: Final = ("invoice", "amount", "date", "account")


def accountant_problems(body: Any, invoice_is: str) -> dict[str, str]:
    """What is wrong with the shape of a `POST /_sandbox/payments` body (a JSON object of
    `invoice`, `amount`, `date`, `account` and, optionally, `refund` and `exchange_rate`);
    `invoice_is` says what names the invoice at this target."""
    if not isinstance(body, dict):
        return {"body": "must be a JSON object"}
    problems = {
        name: "is not a field of a payment" for name in body if name not in ACCOUNTANT_FIELDS
    }
    for name in ACCOUNTANT_REQUIRED:
        if body.get(name) is None:
            problems[name] = "is required"
    if not isinstance(body.get("invoice", ""), str):
        problems["invoice"] = f"must be {invoice_is} (a string)"
    if not isinstance(body.get("date", ""), str):
        problems["date"] = "must be a day, YYYY-MM-DD"
    account = body.get("account", "")
    if isinstance(account, bool) or not isinstance(account, str | int):
        problems["account"] = "must be an account number"
    if not isinstance(body.get("refund", False), bool):
        problems["refund"] = "must be true or false"
    if "exchange_rate" in body:
        rate = exact_number(body["exchange_rate"])
        if rate is None or rate <= 0:
            problems["exchange_rate"] = "must be a number above 0"
    return problems
