"""The chart of accounts: which account each role of the journal posts to.

The journal names its lines by *role* (docs/specification.md §3.3): `receivable`,
`deferred_revenue`, `output_vat`,
`revenue` (with the line's product) and `bank` (with the payment's method). A chart turns a role
and its detail into an account number when the journal is read or exported, so changing the
mapping changes no entry. `revenue` maps product groups (glob patterns of product ids, the first
that matches wins) and `bank` payment methods, each with a `default` for the rest.

The default chart follows the numbering of Danish small-business charts: revenue in the 1000s,
current assets (receivables, bank) in the 5000s, liabilities (VAT, deferrals) in the 7000s.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Role = Literal["receivable", "deferred_revenue", "output_vat", "revenue", "bank"]
ROLES: Final[tuple[Role, ...]] = (
    "receivable",
    "deferred_revenue",
    "output_vat",
    "revenue",
    "bank",
)
#: The roles whose balance is a debit (assets); the others are read as credits.
DEBIT_ROLES: Final = frozenset({"receivable", "bank"})
#: The roles that map a detail (a product id, a payment method) to accounts of their own.
_DETAILED: Final = frozenset({"revenue", "bank"})
_ACCOUNT = re.compile(r"^[0-9]{1,10}$")

DEFAULT_ACCOUNTS: Final[Mapping[str, Any]] = {
    "receivable": "5600",
    "deferred_revenue": "7400",
    "output_vat": "7210",
    "revenue": {"default": "1000"},
    "bank": {"default": "5800", "card": "5810", "mobilepay": "5820"},
}
#: What the default chart's accounts are called, for people reading it.
DEFAULT_NAMES: Final[Mapping[str, str]] = {
    "1000": "Salg af ydelser (revenue)",
    "5600": "Debitorer (receivable)",
    "5800": "Bank",
    "5810": "Kortindløser (card payments in transit)",
    "5820": "MobilePay",
    "7210": "Salgsmoms (output VAT)",
    "7400": "Forudfaktureret omsætning (deferred revenue)",
}


class ChartError(ValueError):
    """A mapping of accounts that cannot be used, with what is wrong in it."""


@dataclass(frozen=True)
class Chart:
    """Account numbers by role; `revenue` by product pattern and `bank` by method as well."""

    receivable: str
    deferred_revenue: str
    output_vat: str
    revenue: str
    bank: str
    revenue_by_product: tuple[tuple[str, str], ...] = ()
    bank_by_method: Mapping[str, str] = field(default_factory=dict)

    def account(self, role: str, detail: str = "") -> str:
        """The account of a journal line of `role` (and product or method `detail`)."""
        if role == "revenue":
            for pattern, product_account in self.revenue_by_product:
                if fnmatch.fnmatchcase(detail, pattern):
                    return product_account
            return self.revenue
        if role == "bank":
            return self.bank_by_method.get(detail, self.bank)
        account: str = getattr(self, role)
        return account

    def accounts(self) -> dict[str, str]:
        """Every account of the chart with its role."""
        return {account: role for role in ROLES for account in sorted(self.accounts_of(role))}

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Chart:
        """A chart from the `[accounts]` table of the configuration, over the defaults: each
        role's account, or for `revenue` and `bank` a table with `default` and the product
        patterns or methods. Refuses an unknown role, a role without an account, an account
        that is not a number, and an account that two roles share."""
        unknown = sorted(set(mapping) - set(ROLES))
        if unknown:
            raise ChartError(
                f"[accounts] has no role {', '.join(unknown)}; the roles are {', '.join(ROLES)}"
            )
        merged = {**DEFAULT_ACCOUNTS, **mapping}
        plain = {role: _number(merged[role], role) for role in ROLES if role not in _DETAILED}
        revenue, by_product = _detailed(merged["revenue"], "revenue")
        bank, by_method = _detailed(merged["bank"], "bank")
        chart = cls(
            receivable=plain["receivable"],
            deferred_revenue=plain["deferred_revenue"],
            output_vat=plain["output_vat"],
            revenue=revenue,
            bank=bank,
            revenue_by_product=tuple(by_product.items()),
            bank_by_method=by_method,
        )
        chart._refuse_shared_accounts()
        return chart

    def _refuse_shared_accounts(self) -> None:
        roles_of: dict[str, set[str]] = {}
        for role in ROLES:
            for account in self.accounts_of(role):
                roles_of.setdefault(account, set()).add(role)
        shared = {account: roles for account, roles in roles_of.items() if len(roles) > 1}
        if shared:
            account, roles = sorted(shared.items())[0]
            raise ChartError(f"account {account} serves two roles: {', '.join(sorted(roles))}")

    def accounts_of(self, role: str) -> set[str]:
        """The accounts a role books to (all of them, for `revenue` and `bank`)."""
        if role == "revenue":
            return {self.revenue, *(account for _, account in self.revenue_by_product)}
        if role == "bank":
            return {self.bank, *self.bank_by_method.values()}
        return {self.account(role)}


def _number(value: Any, where: str) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _ACCOUNT.match(text):
        raise ChartError(f"[accounts] {where}: {value!r} is not an account number (digits)")
    return text


def _detailed(value: Any, role: str) -> tuple[str, dict[str, str]]:
    """`(default account, {detail: account})` of a role mapped by product or method."""
    if not isinstance(value, Mapping):
        return _number(value, role), {}
    if "default" not in value:
        raise ChartError(f"[accounts.{role}] needs a default account")
    details = {
        str(detail): _number(account, f"{role}.{detail}")
        for detail, account in value.items()
        if detail != "default"
    }
    return _number(value["default"], f"{role}.default"), details


DEFAULT_CHART: Final = Chart.from_mapping({})
