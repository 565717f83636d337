"""Billy's contacts, as the Billy adapter (`adapters.sync.billy`) finds, makes and updates
them, and the payment terms of an invoice."""

from __future__ import annotations

from typing import Any, Final

import orjson

from subledger.adapters.sync.billy_client import BillyClient, _having, _text
from subledger.adapters.sync.common import invoice_terms
from subledger.adapters.sync.port import RejectedError, Trace
from subledger.projections.messages import ContactMessage, InvoiceMessage

#: What a new contact's terms are when `payment_terms` has no `default` (Billy requires some).
CONTACT_TERMS_DAYS: Final = 8


class BillyContacts(BillyClient):
    # Contacts.

    def _match(self, customer: ContactMessage) -> list[tuple[str, str, str]]:
        """Where to look for the customer's contact, best first: (list, field, value)."""
        contact_no = str(customer.get("customer_number") or customer["customer_id"])
        wanted = self.settings.match
        places = []
        if wanted == "vat_number" and customer.get("vat_number"):
            places.append(("contacts", "registrationNo", str(customer["vat_number"])))
        elif wanted == "ean" and customer.get("ean"):
            places.append(("contacts", "ean", str(customer["ean"])))
        elif wanted == "email" and customer.get("email"):
            places.append(("contactPersons", "email", str(customer["email"])))
        places.append(("contacts", "contactNo", contact_no))
        return places

    def _contact_key(self, customer: ContactMessage) -> str:
        return orjson.dumps(self._match(customer)).decode()

    def _find_contact(self, trace: Trace, customer: ContactMessage) -> str | None:
        for plural, name, value in self._match(customer):
            if name == "email":
                person = self._first(trace, plural, _having("email", value.lower(), str.lower))
                found = None if person is None else _text(person.get("contactId"))
            else:
                # contactNo is a filter Billy's clients use; the other fields have none.
                filters = {"contactNo": value} if name == "contactNo" else {"isCustomer": "true"}
                record = self._first(trace, plural, _having(name, value), **filters)
                found = None if record is None else _text(record.get("id"))
            if found:
                self._ids[("contact", self._contact_key(customer))] = found
                return found
        return None

    def _contact(self, trace: Trace, customer: ContactMessage) -> str:
        address = customer.get("address")
        fields: dict[str, Any] = {
            "type": "person" if customer.get("kind") == "person" else "company",
            "name": customer.get("name") or customer["customer_id"],
            "countryId": customer.get("country") or "DK",
            "contactNo": customer.get("customer_number") or customer["customer_id"],
            "registrationNo": customer.get("vat_number"),
            "ean": customer.get("ean"),
            "street": address["street"] if address else None,
            "zipcodeText": address["zip"] if address else None,
            "cityText": address["city"] if address else None,
            "isCustomer": True,
        }
        if customer.get("email"):
            fields["contactPersons"] = [
                {"name": fields["name"], "email": customer["email"], "isPrimary": True}
            ]
        existing = self._find_contact(trace, customer)
        if existing is None:
            days = self.settings.payment_terms.get("default", CONTACT_TERMS_DAYS)
            terms = {"paymentTermsMode": "net", "paymentTermsDays": days}
            body = self.http.request(
                trace, "POST", "/contacts", json={"contact": {**fields, **terms}}
            )
            existing = str(body["contacts"][0]["id"])
            self._ids[("contact", self._contact_key(customer))] = existing
            return existing
        self.http.request(trace, "PUT", f"/contacts/{existing}", json={"contact": fields})
        return existing

    def _contact_of(self, trace: Trace, customer: ContactMessage) -> str:
        """The customer's contact: remembered from its contact message, else looked up."""
        found = self._ids.get(("contact", self._contact_key(customer)))
        if found is None:
            found = self._find_contact(trace, customer)
        if found is None:
            raise RejectedError(
                f"Billy has no contact for customer {customer['customer_id']!r}: its contact"
                " message must be sent first"
            )
        return found

    def _terms(self, trace: Trace, payload: InvoiceMessage, contact: str) -> dict[str, Any]:
        """The invoice's payment terms as Billy takes them (it requires the days)."""
        terms = invoice_terms(payload, self.settings.payment_terms)
        if terms is not None:
            return {"paymentTermsMode": "net", "paymentTermsDays": terms.days}
        record = self.http.request(trace, "GET", f"/contacts/{contact}")["contact"]
        days = record.get("paymentTermsDays")
        if days is None:
            raise RejectedError(
                f"Billy's contact {contact} has no payment terms and the invoice has no due"
                f" date: set payment_terms under [targets.{self.name}]"
            )
        return {
            "paymentTermsMode": record.get("paymentTermsMode") or "net",
            "paymentTermsDays": days,
        }
