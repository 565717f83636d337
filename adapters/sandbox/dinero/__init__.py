"""A local stand-in for Dinero's API (Visma), which has no sandbox of its own.

It grants tokens the way Dinero's personal integrations get them (the API-key password grant),
serves the organization's resources under `/v1/{organizationId}/...` (and the few `/v1.2` and
`/v2` endpoints Dinero versions apart), keeps what it is sent in memory and computes what
Dinero computes: line VAT from each line's account, invoice totals, numbers on booking, the
remaining amount after payments and credit notes, and the entries booked documents make. The
facts it follows are in `docs/reference/dinero.md`, to the letter: every field the reference marks
required is required here, and where it is silent the sandbox picks the stricter behaviour;
`docs/sandboxes.md` lists every such choice.

Requests bind their fields case-insensitively (PascalCase and camelCase both work) and answers
are PascalCase. Money travels as numbers in major units of its currency (JPY 0 decimals, DKK 2,
KWD 3) but is kept as integer minor units and computed exactly (fractions for quantities and
rates, rounded half away from zero once per amount, by `domain.money.rhu`). A document in a
foreign currency takes the day's rate from the sandbox's table (`PUT /_sandbox/rates`), and
everything it books is booked in DKK at that rate. The concurrency token
(`TimeStamp`/`Timestamp`) is a counter that every change of a document moves, so a client
holding an older one gets code 58 and must re-read.

The app is wrapped in `adapters.sandbox.faults.FaultInjector` for the API's version prefixes,
with Dinero's rate limit (100 requests a minute) on by default; the token endpoint and the
`/_sandbox` routes are never faulted nor counted.

The package has one module per resource of the API it imitates: `auth` (tokens), `contacts`,
`products`, `invoices`, `credit_notes`, `payments`, `ledger` (manual vouchers and ledger
items) and `accounts` (the chart, VAT types and entries); `documents` holds what invoices and
credit notes share. `settings` says how a sandbox runs, `state` holds the organization and the
store, `envelope` Dinero's errors, request fields and what a handler gets, `lists` paging and
filters, `routing` the endpoints, `brownouts` the 480s, `rates` the day's exchange rates and
`app` puts them together.
"""

from __future__ import annotations

from subledger.adapters.sandbox.dinero.app import create_dinero_app
from subledger.adapters.sandbox.dinero.auth import OAUTH_PATH
from subledger.adapters.sandbox.dinero.brownouts import Brownouts
from subledger.adapters.sandbox.dinero.settings import (
    RATE_LIMIT,
    BrownoutSettings,
    DineroSandboxSettings,
)
from subledger.adapters.sandbox.dinero.state import DineroStore

__all__ = [
    "OAUTH_PATH",
    "RATE_LIMIT",
    "BrownoutSettings",
    "Brownouts",
    "DineroSandboxSettings",
    "DineroStore",
    "create_dinero_app",
]
