"""Manual vouchers (`/vouchers/manuel`) and ledger items (`/ledgeritems`): journal lines
to book, each with its balancing account."""

from __future__ import annotations

from typing import Literal

from subledger.adapters.sandbox.accounting import included_vat
from subledger.adapters.sandbox.dinero.envelope import (
    EXTERNAL_REFERENCE_MAX,
    Answer,
    Call,
    Fields,
    body_object,
    body_objects,
    duplicate,
    fresh,
    invalid,
    not_found,
    read_account,
    touch,
)
from subledger.adapters.sandbox.dinero.state import (
    VAT_TYPES,
    DineroData,
    Entry,
    Voucher,
    VoucherLine,
    canonical_guid,
    instant,
    new_guid,
    vat_account_of,
)
from subledger.adapters.sandbox.fields import Money, Record, known


def _read_voucher_lines(data: DineroData, f: Fields) -> list[VoucherLine]:
    """`Lines`, each with the fields the reference gives it: `Description`, `AccountNumber`,
    `BalancingAccountNumber` (another account) and `Amount` (whole øre, not 0) are required;
    the VAT codes may be null or empty, which means the account's own (as the reference says)."""
    lines = []
    for i, given in enumerate(f.objects("Lines", required=True)):
        line = f.nested(given, f"Lines[{i}].")
        description = line.text("Description", required=True)
        account = read_account(line, data, "AccountNumber", required=True)
        balancing = read_account(line, data, "BalancingAccountNumber", required=True)
        if account is not None and account is balancing:
            line.fail("BalancingAccountNumber", "must be another account than AccountNumber")
        amount = line.money("Amount", required=True, nonzero=True, whole=True)
        lines.append(
            VoucherLine(
                description=description or "",
                account=account["AccountNumber"] if account else 0,
                balancing=balancing["AccountNumber"] if balancing else 0,
                amount=amount or 0,
                account_vat=_vat_code(data, line, "AccountVatCode"),
                balancing_vat=_vat_code(data, line, "BalancingAccountVatCode"),
            )
        )
    return lines


def _vat_code(data: DineroData, f: Fields, name: str) -> str | None:
    """A VAT code as the seeded VAT types spell it; null or empty falls back to the account's."""
    code = f.text(name)
    if code is None or code == "":
        return None
    vat_type = data.vat_type(code)
    if vat_type is None:
        f.fail(name, f"is no VAT code (the codes are {', '.join(c for c, *_ in VAT_TYPES)})")
        return None
    return str(vat_type["VatCode"])


def _read_voucher(
    call: Call, f: Fields, key: str, kind: Literal["ManualVoucher", "LedgerItem"]
) -> Voucher:
    """A manual voucher: `VoucherDate`, `ExternalReference` and `Lines` are required (the
    reference marks only `FileGuid` optional)."""
    day = f.day("VoucherDate", required=True)
    external = f.text("ExternalReference", required=True, max_length=EXTERNAL_REFERENCE_MAX)
    file_guid = f.guid("FileGuid")
    lines = _read_voucher_lines(call.data, f)
    f.check()
    return Voucher(
        key=key,
        kind=kind,
        day=known(day),
        external=external,
        file_guid=file_guid,
        lines=lines,
        stamp=call.stamp(),
        created=call.now,
        updated=call.now,
    )


def create_voucher(call: Call) -> Answer:
    """`POST .../vouchers/manuel`: a draft voucher (Dinero makes its Guid). Every line has
    its balancing account, so a voucher balances by construction."""
    voucher = _read_voucher(call, body_object(call.body), new_guid(), "ManualVoucher")
    call.data.vouchers[voucher.key] = voucher
    return Answer({"Guid": voucher.key, "Timestamp": voucher.stamp}, 201)


def _voucher(call: Call) -> Voucher:
    guid = canonical_guid(call.ids[0])
    voucher = None if guid is None else call.data.vouchers.get(guid)
    if voucher is None or voucher.deleted is not None:
        raise not_found("manual voucher", call.ids[0])
    return voucher


def _voucher_view(voucher: Voucher) -> Record:
    return {
        "Guid": voucher.key,
        "VoucherNumber": voucher.number,
        "VoucherDate": voucher.day.isoformat(),
        "ExternalReference": voucher.external,
        "FileGuid": voucher.file_guid,
        "Status": voucher.status,
        "Lines": [
            {
                "Description": line.description,
                "AccountNumber": line.account,
                "BalancingAccountNumber": line.balancing,
                "Amount": Money(line.amount),
                "AccountVatCode": line.account_vat,
                "BalancingAccountVatCode": line.balancing_vat,
            }
            for line in voucher.lines
        ],
        "Timestamp": voucher.stamp,
        "CreatedAt": instant(voucher.created),
        "UpdatedAt": instant(voucher.updated),
    }


def get_voucher(call: Call) -> Answer:
    return Answer(_voucher_view(_voucher(call)))


def delete_voucher(call: Call) -> Answer:
    voucher = _voucher(call)
    f = body_object(call.body)
    stamp = f.text("Timestamp", required=True)
    f.check()
    fresh(voucher, stamp)
    if voucher.status != "Draft":
        raise invalid({"Status": "a booked voucher cannot be deleted"})
    voucher.deleted = call.now
    return Answer()


def book_voucher(call: Call) -> Answer:
    voucher = _voucher(call)
    f = body_object(call.body)
    stamp = f.text("Timestamp", required=True)
    f.check()
    fresh(voucher, stamp)
    _post_voucher(call, voucher)
    return Answer(_voucher_view(voucher))


def _booking_problems(voucher: Voucher, prefix: str = "") -> dict[str, str]:
    """Why a voucher cannot be booked: it is booked already."""
    if voucher.status != "Draft":
        return {f"{prefix}Status": "the voucher is already booked"}
    return {}


def _post_voucher(call: Call, voucher: Voucher) -> None:
    """Book a draft voucher: its number, its entries and a new stamp."""
    problems = _booking_problems(voucher)
    if problems:
        raise invalid(problems)
    data = call.data
    data.last_voucher_number += 1
    voucher.number = data.last_voucher_number
    voucher.status = "Booked"
    touch(call, voucher)
    data.entries.extend(_voucher_entries(data, voucher))


def _voucher_entries(data: DineroData, voucher: Voucher) -> list[Entry]:
    """Each line debits `Amount` to its account and credits it to its balancing account (a
    negative amount the other way). A side's VAT code (given, else its account's) takes the
    VAT out of its amount to the code's VAT account: journal amounts include VAT."""
    entries: list[Entry] = []
    for line in voucher.lines:
        sides = [
            (line.account, line.amount, line.account_vat),
            (line.balancing, -line.amount, line.balancing_vat),
        ]
        for account, amount, given_code in sides:
            code = given_code or str(data.accounts[account]["VatCode"])
            rate = data.vat_rate(code)
            vat = included_vat(amount, rate)
            text = line.description
            parts = [(account, amount - vat, code), (vat_account_of(data, code), vat, None)]
            entries.extend(
                Entry(
                    new_guid(),
                    voucher.key,
                    number,
                    part,
                    vat_code,
                    voucher.day,
                    voucher.number,
                    voucher.kind,
                    text,
                )
                for number, part, vat_code in parts
                if number is not None and part
            )
    return entries


def create_ledger_items(call: Call) -> Answer:
    """`POST /v1.2/.../ledgeritems`: drafts with the client's `Id`s, all or none; an `Id` the
    sandbox already holds (or given twice) is 409 with code 72. `Id`, `VoucherDate` and
    `Lines` are required (the reference marks only `FileGuid` optional)."""
    items = body_objects(call.body)
    errors: dict[str, str] = {}
    made: list[Voucher] = []
    seen: set[str] = set()
    for i, given in enumerate(items):
        f = Fields(given, errors, f"[{i}].")
        key = f.guid("Id", required=True)
        if key is not None and (key in call.data.ledger_items or key in seen):
            raise duplicate("a ledger item", "Id", key)
        seen.add(key or "")
        day = f.day("VoucherDate", required=True)
        file_guid = f.guid("FileGuid")
        lines = _read_voucher_lines(call.data, f)
        if key is not None and day is not None:
            made.append(
                Voucher(
                    key, "LedgerItem", day, None, file_guid, lines, call.stamp(), call.now, call.now
                )
            )
    if not items:
        errors["body"] = "must hold at least one ledger item"
    if errors:
        raise invalid(errors)
    for item in made:
        call.data.ledger_items[item.key] = item
    return Answer(status=201)


def _ledger_item_status(item: Voucher) -> Record:
    return {
        "Id": item.key,
        "Status": item.status,
        "VoucherNumber": item.number,
        "Version": item.stamp,
    }


def ledger_items_status(call: Call) -> Answer:
    """The status of each `Id` asked about that the sandbox holds (unknown ones are left out)."""
    answers = []
    for i, given in enumerate(body_objects(call.body)):
        f = Fields(given, {}, f"[{i}].")
        key = f.guid("Id", required=True)
        f.check()
        item = call.data.ledger_items.get(key or "")
        if item is not None:
            answers.append(_ledger_item_status(item))
    return Answer(answers)


def book_ledger_items(call: Call) -> Answer:
    """Book ledger items by `Id` and their latest `Version`, all or none (a stale Version is
    code 58). Booking is immediate here: `PendingBooking` is never seen."""
    chosen: list[Voucher] = []
    for i, given in enumerate(body_objects(call.body)):
        f = Fields(given, {}, f"[{i}].")
        key = f.guid("Id", required=True)
        version = f.text("Version", required=True)
        f.check()
        item = call.data.ledger_items.get(key or "")
        if item is None:
            raise not_found("ledger item", key)
        if any(other.key == item.key for other in chosen):
            raise invalid({f"[{i}].Id": "is given twice"})
        fresh(item, version, "Version")
        chosen.append(item)
    problems: dict[str, str] = {}
    for i, item in enumerate(chosen):
        problems.update(_booking_problems(item, f"[{i}]."))
    if problems:
        raise invalid(problems)
    for item in chosen:
        _post_voucher(call, item)
    return Answer([_ledger_item_status(item) for item in chosen])
