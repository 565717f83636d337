"""Dinero's contacts, as the Dinero adapter (`adapters.sync.dinero`) finds, makes, restores
and updates them, and the payment condition of an invoice."""

from __future__ import annotations

from typing import Any

import orjson

from subledger.adapters.sync.common import invoice_terms
from subledger.adapters.sync.dinero_client import DineroClient, _field, guid
from subledger.adapters.sync.port import RejectedError, Trace
from subledger.projections.messages import ContactMessage, InvoiceMessage


def _quoted(value: str) -> str:
    """A value inside a `queryFilter`, its quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


class DineroContacts(DineroClient):
    # Contacts.

    def _contact_key(self, customer: ContactMessage) -> str:
        return orjson.dumps([customer["customer_id"], self._match_value(customer)]).decode()

    def _match_value(self, customer: ContactMessage) -> tuple[str, str] | None:
        """The contact field the configured match looks at, and the customer's value of it."""
        fields = {
            "vat_number": ("VatNumber", customer.get("vat_number")),
            "ean": ("EanNumber", customer.get("ean")),
            "email": ("Email", customer.get("email")),
        }
        field, value = fields.get(self.settings.match, ("", None))
        return (field, str(value)) if value else None

    def _find_contact(self, trace: Trace, customer: ContactMessage) -> str | None:
        """The customer's contact: by the configured match field, else our own Guid, else
        the customer number as `ExternalReference`; each verified against what it was found
        by, deleted contacts aside."""
        found = None
        matched = self._match_value(customer)
        if matched is not None:
            found = self._contact_with(trace, *matched)
        if found is None:
            ours = guid("contact", customer["customer_id"])
            try:
                if _field(self._call(trace, "GET", f"contacts/{ours}"), "DeletedAt"):
                    self._deleted.add(ours)
                found = ours
            except RejectedError as error:
                if error.status != 404:
                    raise
        if found is None:
            number = str(customer.get("customer_number") or customer["customer_id"])
            found = self._contact_with(trace, "ExternalReference", number)
        if found is not None:
            self._contacts[self._contact_key(customer)] = found
        return found

    def _contact_with(self, trace: Trace, field: str, value: str) -> str | None:
        """The Guid of a contact (not deleted) whose `field` is `value` (e-mails compared
        without regard to case): through the `VatNumber eq` filter Dinero documents, else by
        reading the contacts."""
        fields = f"ContactGuid,{field},DeletedAt"
        params: dict[str, Any] = {"fields": fields}
        if field == "VatNumber":
            params["queryFilter"] = f"VatNumber eq {_quoted(value)}"
        fold = str.casefold if field == "Email" else str
        for contact in self._everything(trace, "contacts", **params):
            theirs = _field(contact, field)
            matches = theirs is not None and fold(str(theirs)) == fold(value)
            if matches and not _field(contact, "DeletedAt"):
                return str(_field(contact, "ContactGuid"))
        return None

    def _contact(self, trace: Trace, customer: ContactMessage) -> str:
        address = customer.get("address")
        fields = {
            "Name": customer.get("name") or customer["customer_id"],
            "CountryKey": customer.get("country") or "DK",
            "IsPerson": customer.get("kind") == "person",
            "IsMember": False,
            "UseCvr": bool(customer.get("vat_number")),
            "ExternalReference": str(customer.get("customer_number") or customer["customer_id"]),
            "VatNumber": customer.get("vat_number"),
            "EanNumber": customer.get("ean"),
            "Email": customer.get("email"),
            "Street": address["street"] if address else None,
            "ZipCode": address["zip"] if address else None,
            "City": address["city"] if address else None,
        }
        fields = {name: value for name, value in fields.items() if value is not None}
        existing = self._find_contact(trace, customer)
        if existing is None:
            ours = guid("contact", customer["customer_id"])
            terms = {}
            if "default" in self.settings.payment_terms:
                terms = {
                    "PaymentConditionType": "Netto",
                    "PaymentConditionNumberOfDays": self.settings.payment_terms["default"],
                }
            if self._create(trace, "contacts", {**fields, **terms, "ContactGuid": ours}):
                self._contacts[self._contact_key(customer)] = ours
                return ours
            existing = ours
            if _field(self._call(trace, "GET", f"contacts/{ours}"), "DeletedAt"):
                self._deleted.add(ours)
        if existing in self._deleted:
            self._call(trace, "POST", f"contacts/{existing}/restore")
            self._deleted.discard(existing)
        self._call(trace, "PUT", f"contacts/{existing}", json=fields)
        self._contacts[self._contact_key(customer)] = existing
        return existing

    def _contact_of(self, trace: Trace, customer: ContactMessage) -> str:
        """The customer's contact: remembered from its contact message, else looked up."""
        found = self._contacts.get(self._contact_key(customer)) or self._find_contact(
            trace, customer
        )
        if found is None:
            raise RejectedError(
                f"Dinero has no contact for customer {customer['customer_id']!r}: its contact"
                " message must be sent first"
            )
        return found

    def _terms(self, trace: Trace, payload: InvoiceMessage, contact: str) -> dict[str, Any]:
        """The invoice's payment condition: ours where we have one, else the contact's (which
        Dinero would also apply to an invoice that names none)."""
        terms = invoice_terms(payload, self.settings.payment_terms)
        if terms is not None:
            return {"PaymentConditionType": "Netto", "PaymentConditionNumberOfDays": terms.days}
        record = self._call(trace, "GET", f"contacts/{contact}")
        kind = _field(record, "PaymentConditionType")
        if not kind:
            return {}
        return {
            "PaymentConditionType": kind,
            "PaymentConditionNumberOfDays": _field(record, "PaymentConditionNumberOfDays"),
        }
