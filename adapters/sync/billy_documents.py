"""Billy's invoices and credit notes, as the Billy adapter (`adapters.sync.billy`) makes,
checks, books and delivers them."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from subledger.adapters.sync.billy_client import Record, _text
from subledger.adapters.sync.billy_contacts import BillyContacts
from subledger.adapters.sync.common import (
    credit_lines,
    decimal_rate,
    major,
    minor,
    priced_lines,
    rate_of,
)
from subledger.adapters.sync.port import RejectedError, Trace, WaitingError
from subledger.projections.messages import (
    ContactMessage,
    CreditedLine,
    CreditNoteMessage,
    InvoiceLine,
    InvoiceMessage,
)


class BillyDocuments(BillyContacts):
    # Invoices and credit notes.

    def _lines(
        self, trace: Trace, lines: Sequence[InvoiceLine | CreditedLine], currency: str
    ) -> list[Record]:
        return [
            {
                "productId": self._product_id(
                    trace, priced.line["product_id"], priced.line["vat_rate"]
                ),
                "description": priced.description,
                "quantity": priced.quantity,
                "unitPrice": major(priced.unit, currency),
            }
            for priced in priced_lines(lines, currency)
        ]

    def _rounding_line(self, trace: Trace, amount: int, currency: str) -> Record:
        product = self._product(trace, self.settings.rounding_product)
        if product is None:
            raise RejectedError(
                f"Billy has no product numbered {self.settings.rounding_product!r} for the"
                " øre that make this credit note's VAT ours: make one (VAT-free, booking to"
                f" øreafrunding) or name yours as rounding_product under [targets.{self.name}]"
            )
        return {
            "productId": product["id"],
            "description": "Øreafrunding",
            "quantity": Decimal(1),
            "unitPrice": major(amount, currency),
        }

    def _document(
        self,
        trace: Trace,
        payload: InvoiceMessage | CreditNoteMessage,
        fields: dict[str, Any],
        lines: list[Record],
        expected: tuple[int, int],
    ) -> Record:
        """Create (or find) the invoice or credit note numbered `payload["number"]` with
        `lines`, make sure Billy's net and VAT are `expected`, and book it if configured;
        Billy's record."""
        number = str(payload["number"])
        currency = payload["currency"]
        existing = self._invoice_numbered(trace, number)
        body = {
            "invoiceNo": number,
            "entryDate": payload["issue_date"],
            "currencyId": currency,
            "taxMode": "excl",
            "lines": lines,
            **fields,
        }
        if existing is None:
            created = self.http.request(trace, "POST", "/invoices", json={"invoice": body})
            record_id = created["invoices"][0]["id"]
        else:
            record_id = existing["id"]
            if existing.get("state") == "draft":
                update = {name: body[name] for name in ("lines", "entryDate") if name in body}
                self.http.request(trace, "PUT", f"/invoices/{record_id}", json={"invoice": update})
        record = self.http.request(trace, "GET", f"/invoices/{record_id}")["invoice"]
        theirs = (minor(record.get("amount"), currency), minor(record.get("tax"), currency))
        if theirs != expected:
            raise RejectedError(
                f"Billy's totals of {number} differ from ours: net {theirs[0]} and VAT"
                f" {theirs[1]} there, net {expected[0]} and VAT {expected[1]} expected"
                " (check the products' VAT rulesets)"
            )
        book = self.settings.for_kind(payload["customer"].get("kind"), "book")
        if book and record.get("state") == "draft":
            approve = {"invoice": {"state": "approved"}}
            answer = self.http.request(trace, "PUT", f"/invoices/{record_id}", json=approve)
            record = answer["invoices"][0]
        return dict(record)

    def _invoice_numbered(self, trace: Trace, number: str) -> Record | None:
        return self._first(
            trace, "invoices", lambda r: _text(r.get("invoiceNo")) == number, invoiceNo=number
        )

    def _invoice(self, trace: Trace, payload: InvoiceMessage) -> dict[str, Any]:
        customer = payload["customer"]
        currency = payload["currency"]
        contact = self._contact_of(trace, customer)
        fields: dict[str, Any] = {
            "type": "invoice",
            "contactId": contact,
            **self._terms(trace, payload, contact),
        }
        rate = rate_of(payload.get("exchange_rate"))
        if rate is not None and currency != self._base_currency(trace):
            fields["exchangeRate"] = decimal_rate(rate)
        lines = self._lines(trace, payload["lines"], currency)
        record = self._document(trace, payload, fields, lines, (payload["net"], payload["vat"]))
        if record.get("state") == "approved":
            self._ids[("invoice", str(payload["number"]))] = str(record["id"])
        ids = {"invoice": record["id"], "contact": contact}
        if record.get("state") == "approved" and record.get("sentState", "unsent") == "unsent":
            self._deliver(trace, record["id"], contact, customer)
        return ids

    def _deliver(self, trace: Trace, invoice: str, contact: str, customer: ContactMessage) -> None:
        """E-invoice to a public customer's EAN, or e-mail to the contact person, as configured
        for the customer's kind."""
        kind = customer.get("kind")
        if self.settings.for_kind(kind, "e_invoice") and kind == "public" and customer.get("ean"):
            delivery = {
                "invoiceId": invoice,
                "receiverIdType": "gln",
                "receiverGln": customer["ean"],
            }
            self.http.request(
                trace, "POST", "/invoiceDeliveries", json={"invoiceDelivery": delivery}
            )
        elif self.settings.for_kind(kind, "email") and customer.get("email"):
            email = str(customer["email"]).lower()
            person = self._first(
                trace,
                "contactPersons",
                lambda r: (
                    _text(r.get("contactId")) == contact and _text(r.get("email")).lower() == email
                ),
            )
            if person is None:
                raise RejectedError(
                    f"Billy's contact {contact} has no person with the customer's e-mail"
                )
            message = {
                "contactPersonId": person["id"],
                "emailSubject": "Invoice",
                "emailBody": "Please find your invoice attached.",
            }
            self.http.request(trace, "POST", f"/invoices/{invoice}/emails", json={"email": message})

    def _credit_note(self, trace: Trace, payload: CreditNoteMessage) -> dict[str, Any]:
        currency = payload["currency"]
        contact = self._contact_of(trace, payload["customer"])
        invoice = self._approved_invoice(trace, str(payload["invoice_number"]), "credit")
        fields: dict[str, Any] = {
            "type": "creditNote",
            "contactId": contact,
            "creditedInvoiceId": invoice["id"],
            "paymentTermsMode": "net",
            "paymentTermsDays": 0,
        }
        if currency != self._base_currency(trace):
            rate = rate_of(payload.get("exchange_rate")) or rate_of(invoice.get("exchangeRate"))
            if rate is not None:
                fields["exchangeRate"] = decimal_rate(rate)
        credit = credit_lines(payload["lines"])
        lines = self._lines(trace, credit.lines, currency)
        if credit.rounding:
            lines.append(self._rounding_line(trace, credit.rounding, currency))
        record = self._document(trace, payload, fields, lines, (credit.net, credit.vat))
        return {"credit_note": record["id"], "invoice": invoice["id"], "contact": contact}

    def _approved_invoice(self, trace: Trace, number: str, purpose: str) -> Record:
        """Our invoice `number` as Billy holds it, approved, with its balance modifiers
        embedded (the include Billy documents); `WaitingError` while it is a draft there."""
        found = self._ids.get(("invoice", number))
        if found is None:
            invoice = self._invoice_numbered(trace, number)
            found = None if invoice is None else str(invoice["id"])
        record: Record | None = None
        if found is not None:
            params = {"include": "invoice.balanceModifiers:embed"}
            record = self.http.request(trace, "GET", f"/invoices/{found}", params=params)["invoice"]
        if record is not None and record.get("state") == "draft":
            # A person approves it at Billy in their own time: wait for that, failing nothing.
            raise WaitingError(
                f"invoice {number} booked at {self.name} (a draft there)",
                self.settings.draft_recheck_seconds,
            )
        if record is None or record.get("state") != "approved":
            raise RejectedError(
                f"Billy has no approved invoice {number} to {purpose}"
                f" ({purpose} needs booked invoices: set book = true)"
            )
        self._ids[("invoice", number)] = str(record["id"])
        return record
