"""Billy (API v2) as an accounting target (shared/reference/accounting-apis.md §1).

What each message makes at Billy, found first by our own reference so that a retry after a
timeout, a replay or a rebuild never creates anything twice:

- `contact`: a contact, found by the configured match field (`contactNo` = our customer number,
  or our customer id; `registrationNo` = VAT number; `ean`; or a contact person's e-mail), else
  by `contactNo`; created, or updated in place. The e-mail becomes its primary contact person.
- `invoice`: an invoice numbered with our number (`invoiceNo` is unique at Billy, so it is the
  reference), created as a draft, read back and its net and VAT compared with ours, then approved
  (`book`), e-mailed to the contact person (`email`), or sent as an e-invoice to a public
  customer's EAN (`e_invoice`). A draft found on a retry gets our lines again before the check,
  so a mapping fixed after a totals mismatch completes it.
- `credit_note`: a credit note (`type: creditNote`) against the invoice, the same way.
- `payment` / `refund`: a bank payment on the invoice, money in (`debit`) or out (`credit`), to
  the cash account of the payment method. Billy keeps no reference of ours on a payment: the
  n-th payment of an invoice with the same date, amount and side is the n-th such message.
- `recognition`: a daybook transaction (a voucher) whose `apiType` is our reference, with the
  month's lines by account number.

The ids of contacts and of approved invoices found or made are remembered for the process's
life, so that an invoice does not look its contact up again, nor a payment its invoice; a
message that fails forgets those it used, and its next attempt looks them up afresh.

Money goes out in major units and comes back compared in minor units.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from adapters.sync.common import (
    MessageSender,
    TargetSettings,
    days_between,
    major,
    minor,
    priced_lines,
)
from adapters.sync.http import Budget
from adapters.sync.port import RejectedError, TargetInvoice, Trace
from domain.chart import Chart


def _explain(response: httpx.Response) -> str:
    """Billy's error in its own words: `errorMessage` and every validation error."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict):
        return str(body)[:200]
    parts = [str(body.get("errorMessage") or body.get("errorCode") or "")]
    for record in (body.get("validationErrors") or {}).values():
        parts.append(str(record.get("message", "")))
        parts.extend(f"{name}: {text}" for name, text in (record.get("attributes") or {}).items())
    return "; ".join(part for part in parts if part)


class BillyTarget(MessageSender):
    def __init__(
        self,
        settings: TargetSettings,
        chart: Chart,
        budget: Budget | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"X-Access-Token": settings.token, "Accept": "application/json"}
        super().__init__(settings, chart, headers, _explain, budget, transport)
        self._ids: dict[tuple[str, str], str] = {}

    # The port.

    def check(self, products: set[str] | None = None) -> list[str]:
        trace = Trace()
        problems = []
        try:
            self.http.request(trace, "GET", "/organization")
        except RejectedError as error:
            return [f"{self.name}: the token is refused: {error}"]
        deferred = self._account_no(self.chart.account("deferred_revenue"))
        deferred_id = self._lookup(trace, "accounts", "accountNo", deferred)
        banks = self.chart.accounts_of("bank")
        for number in sorted(self.chart.accounts()):
            theirs = self._account_no(number)
            account = self._find(trace, "accounts", accountNo=theirs)
            if account is None:
                problems.append(f"{self.name}: no account {theirs} (our {number})")
            elif number in banks and not account.get("isPaymentEnabled"):
                problems.append(
                    f"{self.name}: account {theirs} (our bank account {number}) does not take"
                    " payments (isPaymentEnabled is false)"
                )
        for product in sorted((products or set()) | set(self.settings.products)):
            number = self.settings.products.get(product, product)
            found = self._find(trace, "products", productNo=number)
            if found is None:
                problems.append(f"{self.name}: no product numbered {number!r} (our {product!r})")
            elif deferred_id is not None and found.get("accountId") != deferred_id:
                problems.append(
                    f"{self.name}: product {number!r} books to another account than deferred"
                    f" revenue ({deferred}); monthly recognition vouchers assume it does not"
                )
        return problems

    def invoices(self) -> list[TargetInvoice]:
        trace = Trace()
        paid: dict[str, int] = {}
        for payment in self._everything(trace, "bankPayments", isVoided="false"):
            sign = 1 if payment.get("cashSide") == "debit" else -1
            for association in payment.get("associations") or []:
                subject = str(association.get("subjectReference", ""))
                if subject.startswith("invoice:"):
                    invoice = subject.removeprefix("invoice:")
                    paid[invoice] = paid.get(invoice, 0) + sign * minor(payment["cashAmount"])
        return [
            TargetInvoice(
                number=str(invoice.get("invoiceNo")),
                kind="credit_note" if invoice.get("type") == "creditNote" else "invoice",
                gross=minor(invoice.get("grossAmount", 0)),
                balance=minor(invoice.get("balance", 0)),
                state=str(invoice.get("state")),
                paid=paid.get(str(invoice["id"]), 0),
            )
            for invoice in self._everything(trace, "invoices")
        ]

    def _everything(self, trace: Trace, plural: str, **filters: Any) -> list[dict[str, Any]]:
        """Every record of a list, a page of 1,000 at a time."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {**filters, "page": page, "pageSize": 1000}
            body = self.http.request(trace, "GET", f"/{plural}", params=params)
            found += body.get(plural) or []
            if page >= body.get("meta", {}).get("paging", {}).get("pageCount", 1):
                return found
            page += 1

    # Lookups.

    def _find(self, trace: Trace, plural: str, **filters: Any) -> dict[str, Any] | None:
        body = self.http.request(trace, "GET", f"/{plural}", params=filters)
        records = body.get(plural) or []
        return records[0] if records else None

    def _lookup(self, trace: Trace, plural: str, name: str, value: str) -> str | None:
        """The id of the record whose `name` is `value`, remembered for the process's life
        (accounts and products do not move)."""
        key = (plural, value)
        if key not in self._ids:
            found = self._find(trace, plural, **{name: value})
            if found is None:
                return None
            self._ids[key] = found["id"]
        return self._ids[key]

    def _forget(self, payload: dict[str, Any]) -> None:
        """Drop what was remembered about a message's contact and invoices, so that its next
        attempt looks them up afresh (in case they were changed or deleted at Billy)."""
        if "customer" in payload:
            self._ids.pop(("contact", self._contact_key(payload["customer"])), None)
        for name in ("number", "invoice_number"):
            if name in payload:
                self._ids.pop(("invoice", str(payload[name])), None)

    def _account_no(self, ours: str) -> str:
        return self.settings.accounts.get(ours, ours)

    def _account_id(self, trace: Trace, ours: str) -> str:
        theirs = self._account_no(ours)
        found = self._lookup(trace, "accounts", "accountNo", theirs)
        if found is None:
            raise RejectedError(f"Billy has no account {theirs} (our {ours}): fix the mapping")
        return found

    def _product_id(self, trace: Trace, product: str) -> str:
        number = self.settings.products.get(product, product)
        found = self._lookup(trace, "products", "productNo", number)
        if found is None:
            raise RejectedError(
                f"Billy has no product numbered {number!r} (our {product!r}): create it or map"
                f" it under [targets.{self.name}.products]"
            )
        return found

    # Contacts.

    def _match(self, customer: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """Where to look for the customer's contact, best first."""
        contact_no = customer.get("customer_number") or customer["customer_id"]
        wanted = self.settings.match
        places: list[tuple[str, dict[str, Any]]] = []
        if wanted == "vat_number" and customer.get("vat_number"):
            places.append(("contacts", {"registrationNo": customer["vat_number"]}))
        elif wanted == "ean" and customer.get("ean"):
            places.append(("contacts", {"ean": customer["ean"]}))
        elif wanted == "email" and customer.get("email"):
            places.append(("contactPersons", {"email": customer["email"]}))
        places.append(("contacts", {"contactNo": contact_no}))
        return places

    def _contact_key(self, customer: dict[str, Any]) -> str:
        return orjson.dumps(self._match(customer)).decode()

    def _find_contact(self, trace: Trace, customer: dict[str, Any]) -> str | None:
        for plural, filters in self._match(customer):
            found = self._find(trace, plural, **filters)
            if found is not None:
                contact = str(found["contactId"] if plural == "contactPersons" else found["id"])
                self._ids[("contact", self._contact_key(customer))] = contact
                return contact
        return None

    def _contact(self, trace: Trace, customer: dict[str, Any]) -> str:
        address = customer.get("address") or {}
        fields: dict[str, Any] = {
            "type": "person" if customer.get("kind") == "person" else "company",
            "name": customer.get("name") or customer["customer_id"],
            "countryId": customer.get("country") or "DK",
            "contactNo": customer.get("customer_number") or customer["customer_id"],
            "registrationNo": customer.get("vat_number"),
            "ean": customer.get("ean"),
            "street": address.get("street"),
            "zipcodeText": address.get("zip"),
            "cityText": address.get("city"),
            "isCustomer": True,
        }
        if customer.get("email"):
            fields["contactPersons"] = [
                {"name": fields["name"], "email": customer["email"], "isPrimary": True}
            ]
        existing = self._find_contact(trace, customer)
        if existing is None:
            body = self.http.request(trace, "POST", "/contacts", json={"contact": fields})
            existing = str(body["contacts"][0]["id"])
            self._ids[("contact", self._contact_key(customer))] = existing
            return existing
        self.http.request(trace, "PUT", f"/contacts/{existing}", json={"contact": fields})
        return existing

    def _contact_of(self, trace: Trace, customer: dict[str, Any]) -> str:
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

    # Invoices and credit notes.

    def _lines(self, trace: Trace, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "productId": self._product_id(trace, priced.line["product_id"]),
                "description": priced.description,
                "quantity": float(priced.quantity),
                "unitPrice": major(priced.unit),
            }
            for priced in priced_lines(lines)
        ]

    def _document(
        self, trace: Trace, payload: dict[str, Any], fields: dict[str, Any]
    ) -> dict[str, Any]:
        """Create (or find) the invoice or credit note numbered `payload["number"]`, make sure
        its totals are ours, and book it if configured; Billy's record."""
        number = str(payload["number"])
        existing = self._find(trace, "invoices", invoiceNo=number)
        body = {
            "invoiceNo": number,
            "entryDate": payload["issue_date"],
            "currencyId": payload["currency"],
            "taxMode": "excl",
            "lines": self._lines(trace, payload["lines"]),
            **fields,
        }
        if existing is None:
            created = self.http.request(trace, "POST", "/invoices", json={"invoice": body})
            record_id = created["invoices"][0]["id"]
        else:
            record_id = existing["id"]
            if existing.get("state") == "draft":
                update = {"lines": body["lines"], "entryDate": body["entryDate"]}
                self.http.request(trace, "PUT", f"/invoices/{record_id}", json={"invoice": update})
        record = self.http.request(trace, "GET", f"/invoices/{record_id}")["invoice"]
        theirs = (minor(record.get("amount", 0)), minor(record.get("tax", 0)))
        if theirs != (payload["net"], payload["vat"]):
            raise RejectedError(
                f"Billy's totals of {number} differ from ours: net {theirs[0]} and VAT"
                f" {theirs[1]} there, net {payload['net']} and VAT {payload['vat']} here"
                " (check the products' VAT rulesets)"
            )
        if self.settings.book and record.get("state") == "draft":
            approve = {"invoice": {"state": "approved"}}
            record = self.http.request(trace, "PUT", f"/invoices/{record_id}", json=approve)[
                "invoices"
            ][0]
        return dict(record)

    def _invoice(self, trace: Trace, payload: dict[str, Any]) -> dict[str, Any]:
        customer = payload["customer"]
        contact = self._contact_of(trace, customer)
        fields: dict[str, Any] = {"type": "invoice", "contactId": contact}
        if payload.get("due_date"):
            fields["paymentTermsDays"] = days_between(payload["issue_date"], payload["due_date"])
        record = self._document(trace, payload, fields)
        if record.get("state") == "approved":
            self._ids[("invoice", str(payload["number"]))] = str(record["id"])
        ids = {"invoice": record["id"], "contact": contact}
        if record.get("state") == "approved" and record.get("sentState", "unsent") == "unsent":
            self._deliver(trace, record["id"], contact, customer)
        return ids

    def _deliver(self, trace: Trace, invoice: str, contact: str, customer: dict[str, Any]) -> None:
        """E-invoice to a public customer's EAN, or e-mail to the contact person, as configured."""
        if self.settings.e_invoice and customer.get("kind") == "public" and customer.get("ean"):
            delivery = {
                "invoiceId": invoice,
                "receiverIdType": "gln",
                "receiverGln": customer["ean"],
            }
            self.http.request(
                trace, "POST", "/invoiceDeliveries", json={"invoiceDelivery": delivery}
            )
        elif self.settings.email and customer.get("email"):
            person = self._find(trace, "contactPersons", contactId=contact, email=customer["email"])
            if person is None:
                raise RejectedError(
                    f"Billy's contact {contact} has no person with the customer's e-mail"
                )
            email = {
                "contactPersonId": person["id"],
                "emailSubject": "Invoice",
                "emailBody": "Please find your invoice attached.",
            }
            self.http.request(trace, "POST", f"/invoices/{invoice}/emails", json={"email": email})

    def _credit_note(self, trace: Trace, payload: dict[str, Any]) -> dict[str, Any]:
        contact = self._contact_of(trace, payload["customer"])
        invoice = self._approved_invoice(trace, str(payload["invoice_number"]), "credit")
        fields = {"type": "creditNote", "contactId": contact, "creditedInvoiceId": invoice}
        record = self._document(trace, payload, fields)
        return {"credit_note": record["id"], "invoice": invoice, "contact": contact}

    def _approved_invoice(self, trace: Trace, number: str, purpose: str) -> str:
        """The id of our invoice `number`, approved at Billy: remembered from its own message,
        else looked up."""
        found = self._ids.get(("invoice", number))
        if found is None:
            invoice = self._find(trace, "invoices", invoiceNo=number)
            if invoice is None or invoice.get("state") != "approved":
                raise RejectedError(
                    f"Billy has no approved invoice {number} to {purpose}"
                    f" ({purpose} needs booked invoices: set book = true)"
                )
            found = self._ids[("invoice", number)] = str(invoice["id"])
        return found

    # Payments, refunds and vouchers.

    def _payment(self, trace: Trace, payload: dict[str, Any], kind: str) -> dict[str, Any]:
        invoice = self._approved_invoice(trace, str(payload["invoice_number"]), kind)
        side = "debit" if kind == "payment" else "credit"
        subject = f"invoice:{invoice}"
        existing = self.http.request(
            trace,
            "GET",
            "/bankPayments",
            params={"subjectReference": subject, "isVoided": "false"},
        )["bankPayments"]
        same = [
            p["id"]
            for p in existing
            if p.get("cashSide") == side
            and p.get("entryDate") == payload["date"]
            and minor(p.get("cashAmount", 0)) == payload["amount"]
        ]
        if len(same) > payload["ordinal"]:
            return {kind: same[payload["ordinal"]], "invoice": invoice}
        account = self._account_id(trace, self.chart.account("bank", payload["method"]))
        body = {
            "entryDate": payload["date"],
            "cashAmount": major(payload["amount"]),
            "cashSide": side,
            "cashAccountId": account,
            "associations": [{"subjectReference": subject}],
        }
        created = self.http.request(trace, "POST", "/bankPayments", json={"bankPayment": body})
        return {kind: created["bankPayments"][0]["id"], "invoice": invoice}

    def _recognition(self, trace: Trace, payload: dict[str, Any], source: str) -> dict[str, Any]:
        reference = f"subledger:recognition:{source}"
        existing = self._find(trace, "daybookTransactions", apiType=reference)
        if existing is not None:
            return {"voucher": existing["id"]}
        lines = [
            {
                "accountNo": self._account_no(line["account"]),
                "amount": major(line["amount"]),
                "side": line["side"],
                "currencyId": line["currency"],
                "text": f"Recognized revenue {payload['month']}",
            }
            for line in payload["lines"]
        ]
        body = {
            "entryDate": payload["date"],
            "description": f"subledger: revenue recognized in {payload['month']}",
            "apiType": reference,
            "state": "approved" if self.settings.book else "draft",
            "lines": lines,
        }
        created = self.http.request(
            trace, "POST", "/daybookTransactions", json={"daybookTransaction": body}
        )
        return {"voucher": created["daybookTransactions"][0]["id"]}
