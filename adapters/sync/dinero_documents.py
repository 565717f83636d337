"""Dinero's invoices and credit notes, as the Dinero adapter (`adapters.sync.dinero`) makes,
checks, books and delivers them."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from subledger.adapters.sync.common import credit_lines, major, minor, priced_lines
from subledger.adapters.sync.dinero_client import guid
from subledger.adapters.sync.dinero_contacts import DineroContacts
from subledger.adapters.sync.port import RejectedError, Trace, WaitingError
from subledger.projections.messages import (
    ContactMessage,
    CreditedLine,
    CreditNoteMessage,
    InvoiceLine,
    InvoiceMessage,
)


class DineroDocuments(DineroContacts):
    # Invoices and credit notes.

    def _lines(
        self, lines: Sequence[InvoiceLine | CreditedLine], currency: str
    ) -> list[dict[str, Any]]:
        return [
            {
                "LineType": "Product",
                "Description": priced.description,
                "Quantity": priced.quantity,
                "BaseAmountValue": major(priced.unit, currency),
                "AccountNumber": self._line_account(priced.line),
                "Unit": "parts",
            }
            for priced in priced_lines(lines, currency)
        ]

    def _document(
        self,
        trace: Trace,
        payload: InvoiceMessage | CreditNoteMessage,
        path: str,
        key: str,
        fields: dict[str, Any],
        lines: list[dict[str, Any]],
        expected: tuple[int, int],
    ) -> dict[str, Any]:
        """Create (or find) the invoice or credit note with Guid `key` under `path` with
        `lines`, make sure Dinero's net and VAT are `expected`, and book it if configured;
        Dinero's record."""
        number = str(payload["number"])
        currency = payload["currency"]
        body = {
            "Guid": key,
            "Date": payload["issue_date"],
            "Currency": currency,
            "ExternalReference": number,
            "Description": number,
            "ProductLines": lines,
            **fields,
        }
        created = self._create(trace, path, body)
        record = self._call(trace, "GET", f"{path}/{key}")

        def reread() -> str:
            nonlocal record
            record = self._call(trace, "GET", f"{path}/{key}")
            return str(record["TimeStamp"])

        if not created and record.get("Status") == "Draft" and path == "invoices":
            # Found on a retry: our lines again, in case the mapping was fixed since.
            changes = {name: value for name, value in body.items() if name != "Guid"}
            self._while_stale(
                str(record["TimeStamp"]),
                reread,
                lambda stamp: self._call(
                    trace, "PUT", f"invoices/{key}", "v1.2", json={**changes, "Timestamp": stamp}
                ),
            )
            reread()
        theirs = (
            minor(record.get("TotalExclVat"), currency),
            minor(record.get("TotalVat"), currency),
        )
        if theirs != expected:
            raise RejectedError(
                f"Dinero's totals of {number} differ from ours: net {theirs[0]} and VAT"
                f" {theirs[1]} there, net {expected[0]} and VAT {expected[1]} expected"
                f" (check the VAT codes of the accounts in [targets.{self.name}.vat_accounts])"
            )
        book = self.settings.for_kind(payload["customer"].get("kind"), "book")
        if book and record.get("Status") == "Draft":
            record = self._while_stale(
                str(record["TimeStamp"]),
                reread,
                lambda stamp: self._call(
                    trace, "POST", f"{path}/{key}/book", json={"Timestamp": stamp}
                ),
            )
        return dict(record)

    def _invoice(self, trace: Trace, payload: InvoiceMessage) -> dict[str, Any]:
        customer = payload["customer"]
        contact = self._contact_of(trace, customer)
        key = guid("invoice", str(payload["invoice_id"]))
        fields = {"ContactGuid": contact, **self._terms(trace, payload, contact)}
        lines = self._lines(payload["lines"], payload["currency"])
        expected = (payload["net"], payload["vat"])
        record = self._document(trace, payload, "invoices", key, fields, lines, expected)
        if record.get("Status") == "Booked":
            self._stamps[key] = str(record["TimeStamp"])
            if record.get("MailOutStatus", "NotSent") == "NotSent":
                self._deliver(trace, key, customer)
        return {"invoice": key, "contact": contact, "number": record.get("Number")}

    def _deliver(self, trace: Trace, key: str, customer: ContactMessage) -> None:
        """E-invoice to a public customer's EAN, or e-mail to the customer, as configured for
        the customer's kind."""
        kind = customer.get("kind")
        if self.settings.for_kind(kind, "e_invoice") and kind == "public" and customer.get("ean"):
            path, version = f"invoices/{key}/with-ean", "v2"
            body: dict[str, Any] = {"ReceiverEanNumber": customer["ean"]}
        elif self.settings.for_kind(kind, "email") and customer.get("email"):
            path, version = f"invoices/{key}/email", "v1"
            body = {"ShouldAddTrustPilotEmailAsBcc": False, "Receiver": customer["email"]}
        else:
            return
        self._while_stale(
            self._stamps.pop(key),
            lambda: str(self._booked_invoice(trace, key)["TimeStamp"]),
            lambda stamp: self._call(
                trace, "POST", path, version, json={**body, "Timestamp": stamp}
            ),
        )

    def _booked_invoice(self, trace: Trace, key: str) -> dict[str, Any]:
        """The invoice with Guid `key` as Dinero holds it, booked; `WaitingError` while it is
        a draft there (a person books it in their own time)."""
        record: dict[str, Any] = self._call(trace, "GET", f"invoices/{key}")
        if record.get("Status") == "Draft":
            raise WaitingError(
                f"invoice {record.get('ExternalReference') or key} booked at {self.name}"
                " (a draft there)",
                self.settings.draft_recheck_seconds,
            )
        if record.get("Status") != "Booked":
            raise RejectedError(
                f"Dinero's invoice {record.get('ExternalReference') or key} is not booked"
                " (payments and credit notes need booked invoices: set book = true)"
            )
        return record

    def _credit_note(self, trace: Trace, payload: CreditNoteMessage) -> dict[str, Any]:
        currency = payload["currency"]
        contact = self._contact_of(trace, payload["customer"])
        invoice = guid("invoice", str(payload["invoice_id"]))
        key = guid("credit_note", str(payload["credit_note_id"]))
        fields = {"ContactGuid": contact, "CreditNoteFor": invoice}
        # Dinero credits booked invoices only: wait while the invoice is a draft there.
        self._booked_invoice(trace, invoice)
        credit = credit_lines(payload["lines"])
        lines = self._lines(credit.lines, currency)
        if credit.rounding:
            lines.append(
                {
                    "LineType": "Product",
                    "Description": "Øreafrunding",
                    "Quantity": Decimal(1),
                    "BaseAmountValue": major(credit.rounding, currency),
                    "AccountNumber": int(self.settings.rounding_account),
                    "Unit": "parts",
                }
            )
        expected = (credit.net, credit.vat)
        record = self._document(trace, payload, "sales/creditnotes", key, fields, lines, expected)
        self._stamps.pop(invoice, None)
        return {"credit_note": key, "invoice": invoice, "number": record.get("Number")}
