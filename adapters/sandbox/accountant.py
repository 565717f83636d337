"""The accountant's side of both sandboxes: a payment registered, or taken back, by a person at
Billy or Dinero (a bank reconciliation there), through `POST /_sandbox/payments` and
`DELETE /_sandbox/payments/{id}` (docs/sandboxes.md). The shape of the body is checked here,
alike for both; the values are then checked by each sandbox's own payment rules."""

from __future__ import annotations

from typing import Any, Final

ACCOUNTANT_FIELDS: Final = ("invoice", "amount", "date", "account", "refund")
ACCOUNTANT_REQUIRED: Final = ("invoice", "amount", "date", "account")


def accountant_problems(body: Any, invoice_is: str) -> dict[str, str]:
    """What is wrong with the shape of a `POST /_sandbox/payments` body (a JSON object of
    `invoice`, `amount`, `date`, `account` and, optionally, `refund`); `invoice_is` says what
    names the invoice at this target."""
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
    return problems
