"""A local stand-in for Billy's API v2, which has no sandbox of its own.

It keeps what it is sent in memory, answers in Billy's envelopes with Billy's error codes, and
computes what Billy computes (line VAT, invoice totals, due dates, exchange rates, balances
after credit notes and payments, and the balance modifiers that record them), so the outbox
dispatcher can be run against it over real HTTP. It follows the facts about Billy in
`docs/reference/billy.md` to the letter and is never more lenient than Billy: it honours
exactly the list filters that are documented, requires every field marked required, and where
Billy's docs are silent it picks the strict behaviour; `docs/sandboxes.md` lists every such
choice.

Money travels as floats in major units, as in Billy (`unitPrice: 200.5`), but is kept as
integer minor units of its currency (`Money`, with the currency's ISO 4217 exponent: DKK 2,
JPY 0, KWD 3) and computed exactly (integers, and fractions for quantities and rates, rounded
half away from zero once per amount), so a total never drifts by a float's error. Money that
moved (a payment's cash, a journal line) must already be whole minor units.

The app is wrapped in `adapters.sandbox.faults.FaultInjector` for `/v2`; the `/_sandbox`
routes read and reset it (and the exchange rates) and are never faulted.

The package has one module per resource of the API it imitates: `contacts`, `products`,
`invoices` (and credit notes), `sending` (e-mails and e-invoices), `balances` (the balance
modifiers), `payments` (bank payments) and `daybook` (transactions). `state` holds the seeded
organization and the store, `envelope` Billy's envelopes, refusals and request fields,
`listing` the list filters and paging, `routing` the `/v2` dispatcher, `rates` the exchange
rates and `app` puts them together.
"""

from __future__ import annotations

from subledger.adapters.sandbox.billy.app import BillySandboxSettings, create_billy_app
from subledger.adapters.sandbox.billy.state import BillyStore

__all__ = ["BillySandboxSettings", "BillyStore", "create_billy_app"]
