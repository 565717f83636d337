"""What an approved invoice or credit note still owes, and the balance modifiers that move it.

A bank payment or an approved credit note records what it did to its subject's balance as a
balance modifier; the balance is the gross less what the live modifiers took off it.
"""

from __future__ import annotations

from subledger.adapters.sandbox.accounting import BASE_CURRENCY
from subledger.adapters.sandbox.billy.state import BillyData, insert, new_id
from subledger.adapters.sandbox.fields import Money, Record, exponent_of


def modifiers_on(data: BillyData, subject_id: str) -> list[Record]:
    """The balance modifiers whose subject is an invoice or credit note, oldest first."""
    table = data.tables["balanceModifiers"]
    return [table[modifier_id] for modifier_id in data.modifiers_of.get(subject_id, [])]


def _balance(data: BillyData, invoice: Record) -> int:
    """What is still owed on an approved document: its gross (a credit note's counts as owed
    to the customer, so negative) less what its live balance modifiers took off it."""
    if invoice["state"] != "approved":
        return 0
    gross: int = invoice["grossAmount"].minor
    owed = -gross if invoice["type"] == "creditNote" else gross
    live = (m for m in modifiers_on(data, invoice["id"]) if not m["isVoided"])
    taken: int = sum(modifier["amount"].minor for modifier in live)
    return owed - taken


def invoice_view(data: BillyData, invoice: Record) -> Record:
    """An invoice as it is read: with its balance and whether it is paid."""
    balance = _balance(data, invoice)
    paid = invoice["state"] == "approved" and invoice["grossAmount"].minor > 0 and balance == 0
    exponent = invoice["grossAmount"].exponent
    return {**invoice, "balance": Money(balance, exponent), "isPaid": paid}


def add_modifier(
    data: BillyData, reference: str, subject_id: str, amount: Money, entry_date: str, realized: int
) -> Record:
    """Record what a payment or a credit note did to its subject's balance.

    `amount` is in the subject's currency and positive where it lowers the balance (money
    received, a credit); `realized` is the realized currency difference in DKK minor units."""
    modifier: Record = {
        "id": new_id(),
        "modifierReference": reference,
        "subjectReference": f"invoice:{subject_id}",
        "amount": amount,
        "entryDate": entry_date,
        "realizedCurrencyDifference": Money(realized, exponent_of(BASE_CURRENCY)),
        "isVoided": False,
    }
    insert(data.tables["balanceModifiers"], modifier)
    data.modifiers_of.setdefault(subject_id, []).append(modifier["id"])
    data.modifier_by_reference[reference] = modifier["id"]
    return modifier
