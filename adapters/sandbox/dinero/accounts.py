"""The chart and what is booked on it: accounts, VAT types, sales settings and `/entries`."""

from __future__ import annotations

from collections import Counter
from datetime import date

from subledger.adapters.sandbox.dinero.contacts import DEFAULT_CONDITION
from subledger.adapters.sandbox.dinero.envelope import Answer, Call, invalid
from subledger.adapters.sandbox.dinero.lists import checked, project_fields, true_or_false
from subledger.adapters.sandbox.dinero.state import SALES_ACCOUNT, DineroData, Entry
from subledger.adapters.sandbox.fields import Money, Record, parse_day


def entry_accounts(call: Call) -> Answer:
    """Every account (deposit accounts too: journal lines may use them), filtered by
    `categoryFilter` (categories, comma-separated)."""
    accounts = [_account_view(account) for account in call.data.accounts.values()]
    wanted = call.query.get("categoryFilter")
    if wanted is not None:
        categories = {category.strip().lower() for category in wanted.split(",")}
        accounts = [a for a in accounts if str(a["Category"]).lower() in categories]
    return Answer(project_fields(accounts, call.query.get("fields")))


def _account_view(account: Record) -> Record:
    return {name: value for name, value in account.items() if name != "IsDepositAccount"}


def deposit_accounts(call: Call) -> Answer:
    accounts = [
        {"AccountNumber": account["AccountNumber"], "Name": account["Name"]}
        for account in call.data.accounts.values()
        if account["IsDepositAccount"]
    ]
    return Answer(project_fields(accounts, call.query.get("fields")))


def list_vat_types(call: Call) -> Answer:
    types = [
        {name: value for name, value in vat_type.items() if not name.startswith("_")}
        for vat_type in call.data.vat_types.values()
    ]
    return Answer(project_fields(types, call.query.get("fields")))


def sales_settings(call: Call) -> Answer:
    return Answer(
        {
            "DefaultAccountNumber": SALES_ACCOUNT,
            "LinesInclVat": False,
            "DefaultPaymentConditionType": DEFAULT_CONDITION[0],
            "DefaultPaymentConditionNumberOfDays": DEFAULT_CONDITION[1],
        }
    )


def list_entries(call: Call) -> Answer:
    """`GET /entries?fromDate&toDate&includePrimo`: the booked entries of the range, which must
    lie in one accounting year (a calendar year here); with `includePrimo` (the default), each
    account's balance before the year comes first, dated the year's first day."""
    first = checked(call.query, "fromDate", parse_day)
    last = checked(call.query, "toDate", parse_day)
    primo = checked(call.query, "includePrimo", true_or_false)
    if first is None or last is None:
        raise invalid({"fromDate": "fromDate and toDate are required"})
    if first > last or first.year != last.year:
        raise invalid({"toDate": "the range must lie in one accounting year, fromDate first"})
    data = call.data
    rows = []
    if primo is not False:
        before: Counter[int] = Counter()
        for entry in data.entries:
            if entry.day < date(first.year, 1, 1):
                before[entry.account] += entry.amount
        rows = [
            _entry_view(
                data,
                Entry(
                    "", "", account, amount, None, date(first.year, 1, 1), None, "Primo", "Primo"
                ),
            )
            for account, amount in sorted(before.items())
            if amount
        ]
    rows += [_entry_view(data, e) for e in data.entries if first <= e.day <= last]
    return Answer(rows)


def _entry_view(data: DineroData, entry: Entry) -> Record:
    return {
        "EntryGuid": entry.guid or None,
        "AccountNumber": entry.account,
        "AccountName": data.accounts[entry.account]["Name"],
        "Date": entry.day.isoformat(),
        "VoucherNumber": entry.voucher_number,
        "VoucherType": entry.voucher_type,
        "Description": entry.description,
        "VatCode": entry.vat_code,
        "Amount": Money(entry.amount),
    }
