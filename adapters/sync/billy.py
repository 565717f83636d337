"""Billy (API v2) as an accounting target (docs/sync.md; Billy's facts in
shared/reference/accounting-apis.md §1).

What each message makes at Billy, found first by our own reference so that a retry after a
timeout, a replay or a rebuild never creates anything twice:

- `contact`: a contact, found by the configured match field (`contactNo` = our customer number,
  or our customer id; `registrationNo` = VAT number; `ean`; or a contact person's e-mail), else
  by `contactNo`; created (with the target's default payment terms, which Billy requires), or
  updated in place. The e-mail becomes its primary contact person.
- `invoice`: an invoice numbered with our number (`invoiceNo` is unique at Billy, so it is the
  reference), always with payment terms (`net`, days from our due date, else from the terms of
  the payment method in `payment_terms`, else the contact's own), and the event's exchange rate
  where it gave one; created as a draft, read back and its net and VAT compared with ours,
  then approved (`book`), e-mailed to the contact person (`email`), or sent as an e-invoice to
  a public customer's EAN (`e_invoice`). A draft found on a retry gets our lines again before
  the check, so a mapping fixed after a totals mismatch completes it.
- `credit_note`: a credit note (`type: creditNote`) against the invoice, the same way, at the
  invoice's exchange rate unless the event gave one. Billy computes each line's VAT itself; where
  ours differs (the credit that completes a line carries the VAT left on it, contract §2), a
  VAT-free line of the `rounding_product` makes the note's gross ours (`credit_lines`).
- `payment` / `refund`: a bank payment on the invoice, money in (`debit`) or out (`credit`), to
  the cash account of the payment method, in that account's currency: a foreign-currency
  invoice's payment into a kroner account is sent in kroner at the event's exchange rate, else
  at the rate Billy applied to the invoice, with that rate as `cashExchangeRate`. Billy keeps no
  reference of ours on a payment: the payments already on the invoice are read the way Billy
  documents (the invoice's balance modifiers), and the n-th with the same date, side and amount
  is the n-th such message.
- `recognition`: a daybook transaction (a voucher) whose `apiType` is our reference, with the
  month's lines by account number.

Only the list filters Billy documents are used, and every record found through one is used only
if it is what was looked for (the same number, reference or e-mail): a service that ignores a
filter answers its whole list, and the adapter pages on instead of taking the first record.
Accounts and products are read once for the process's life; the ids of contacts and approved
invoices found or made are remembered too, and a message that fails forgets those it used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

import httpx
import orjson

from subledger.adapters.sync.common import (
    BASE_CURRENCY,
    MessageSender,
    PaymentKind,
    TargetSettings,
    converted,
    credit_lines,
    decimal_rate,
    invoice_terms,
    major,
    minor,
    priced_lines,
    rate_of,
)
from subledger.adapters.sync.http import Budget
from subledger.adapters.sync.port import RejectedError, TargetInvoice, Trace
from subledger.domain.chart import Chart
from subledger.projections.messages import (
    ContactMessage,
    CreditedLine,
    CreditNoteMessage,
    InvoiceLine,
    InvoiceMessage,
    Payload,
    PaymentMessage,
    RecognitionMessage,
    RefundMessage,
)

PAGE_SIZE: Final = 1000
#: What a new contact's terms are when `payment_terms` has no `default` (Billy requires some).
CONTACT_TERMS_DAYS: Final = 8
Record = dict[str, Any]


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


def _text(value: Any) -> str:
    """A field as compared with what it was looked up by (Billy may answer numbers)."""
    return "" if value is None else str(value)


def _having(name: str, value: str, fold: Callable[[str], str] = str) -> Callable[[Record], bool]:
    """Whether a record's `name` is `value` (both passed through `fold`)."""
    return lambda record: fold(_text(record.get(name))) == value


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
        self._accounts: dict[str, Record] | None = None
        self._products: dict[str, Record] | None = None
        self._base: str | None = None

    # The port.

    def check(self, products: set[str] | None = None) -> list[str]:
        trace = Trace()
        problems = []
        try:
            self._base_currency(trace)
        except RejectedError as error:
            return [f"{self.name}: the token is refused: {error}"]
        deferred = self._account_no(self.chart.account("deferred_revenue"))
        deferred_record = self._account(trace, deferred)
        banks = self.chart.accounts_of("bank")
        for number in sorted(self.chart.accounts()):
            theirs = self._account_no(number)
            account = self._account(trace, theirs)
            if account is None:
                problems.append(f"{self.name}: no account {theirs} (our {number})")
            elif number in banks and not account.get("isPaymentEnabled"):
                problems.append(
                    f"{self.name}: account {theirs} (our bank account {number}) does not take"
                    " payments (isPaymentEnabled is false)"
                )
        for product in sorted((products or set()) | set(self.settings.products)):
            number = self.settings.products.get(product, product)
            found = self._product(trace, number)
            if found is None:
                problems.append(f"{self.name}: no product numbered {number!r} (our {product!r})")
            elif deferred_record is not None and found.get("accountId") != deferred_record["id"]:
                problems.append(
                    f"{self.name}: product {number!r} books to another account than deferred"
                    f" revenue ({deferred}); monthly recognition vouchers assume it does not"
                )
        if self._product(trace, self.settings.rounding_product) is None:
            problems.append(
                f"{self.name}: no product numbered {self.settings.rounding_product!r} for the"
                " rounding lines of credit notes (VAT-free, booking to øreafrunding): make one"
                f" or name yours as rounding_product under [targets.{self.name}]"
            )
        return problems

    def invoices(self) -> list[TargetInvoice]:
        """Every invoice and credit note, with what its payments settled in its own currency
        (read off its balance modifiers, the direction off each bank payment)."""
        trace = Trace()
        invoices = list(self._pages(trace, "invoices"))
        currency_of = {str(i["id"]): str(i.get("currencyId")) for i in invoices}
        sides = {
            str(p["id"]): p.get("cashSide")
            for p in self._pages(trace, "bankPayments")
            if not p.get("isVoided")
        }
        paid: dict[str, int] = {}
        for modifier in self._pages(trace, "balanceModifiers"):
            subject = _text(modifier.get("subjectReference"))
            payment = _text(modifier.get("modifierReference")).removeprefix("bankPayment:")
            subject_id = subject.removeprefix("invoice:")
            if modifier.get("isVoided") or payment not in sides or subject_id not in currency_of:
                continue
            amount = abs(minor(modifier.get("amount"), currency_of[subject_id]))
            sign = 1 if sides[payment] == "debit" else -1
            paid[subject_id] = paid.get(subject_id, 0) + sign * amount
        held = []
        for record in invoices:
            currency = currency_of[str(record["id"])]
            held.append(
                TargetInvoice(
                    number=_text(record.get("invoiceNo")),
                    kind="credit_note" if record.get("type") == "creditNote" else "invoice",
                    gross=minor(record.get("amount"), currency)
                    + minor(record.get("tax"), currency),
                    balance=minor(record.get("balance"), currency),
                    state=str(record.get("state")),
                    paid=paid.get(str(record["id"]), 0),
                )
            )
        return held

    # Lists and lookups.

    def _pages(self, trace: Trace, plural: str, **filters: Any) -> Iterator[Record]:
        """Every record of a list (with documented `filters` only), a page of 1,000 at a time."""
        page = 1
        while True:
            params = {**filters, "page": page, "pageSize": PAGE_SIZE}
            body = self.http.request(trace, "GET", f"/{plural}", params=params)
            yield from body.get(plural) or []
            paging = (body.get("meta") or {}).get("paging") or {}
            if page >= int(paging.get("pageCount") or 1):
                return
            page += 1

    def _first(
        self, trace: Trace, plural: str, wanted: Callable[[Record], bool], **filters: Any
    ) -> Record | None:
        """The first record of the list that is `wanted`, paging on past those that are not."""
        return next((r for r in self._pages(trace, plural, **filters) if wanted(r)), None)

    def _base_currency(self, trace: Trace) -> str:
        if self._base is None:
            organization = self.http.request(trace, "GET", "/organization")["organization"]
            self._base = str(organization.get("baseCurrencyId") or BASE_CURRENCY)
        return self._base

    def _account(self, trace: Trace, number: str) -> Record | None:
        """The account numbered `number` (the chart is read once, and again on a miss)."""
        if self._accounts is None or number not in self._accounts:
            self._accounts = {_text(a.get("accountNo")): a for a in self._pages(trace, "accounts")}
        return self._accounts.get(number)

    def _product(self, trace: Trace, number: str) -> Record | None:
        """The product numbered `number` (products are read once, and again on a miss)."""
        if self._products is None or number not in self._products:
            self._products = {}
            for product in self._pages(trace, "products"):
                self._products.setdefault(_text(product.get("productNo")), product)
        return self._products.get(number)

    def _forget(self, payload: Payload) -> None:
        """Drop what was remembered about a message's contact and invoices, so that its next
        attempt looks them up afresh (in case they were changed or deleted at Billy)."""
        if "customer" in payload:
            self._ids.pop(("contact", self._contact_key(payload["customer"])), None)
        if "number" in payload:
            self._ids.pop(("invoice", str(payload["number"])), None)
        if "invoice_number" in payload:
            self._ids.pop(("invoice", str(payload["invoice_number"])), None)

    def _account_no(self, ours: str) -> str:
        return self.settings.accounts.get(ours, ours)

    def _account_id(self, trace: Trace, ours: str) -> str:
        return str(self._bank_account(trace, ours)["id"])

    def _bank_account(self, trace: Trace, ours: str) -> Record:
        theirs = self._account_no(ours)
        found = self._account(trace, theirs)
        if found is None:
            raise RejectedError(f"Billy has no account {theirs} (our {ours}): fix the mapping")
        return found

    def _product_id(self, trace: Trace, product: str) -> str:
        number = self.settings.products.get(product, product)
        found = self._product(trace, number)
        if found is None:
            raise RejectedError(
                f"Billy has no product numbered {number!r} (our {product!r}): create it or map"
                f" it under [targets.{self.name}.products]"
            )
        return str(found["id"])

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

    # Invoices and credit notes.

    def _lines(
        self, trace: Trace, lines: Sequence[InvoiceLine | CreditedLine], currency: str
    ) -> list[Record]:
        return [
            {
                "productId": self._product_id(trace, priced.line["product_id"]),
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
        if self.settings.book and record.get("state") == "draft":
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
        embedded (the include Billy documents)."""
        found = self._ids.get(("invoice", number))
        if found is None:
            invoice = self._invoice_numbered(trace, number)
            found = None if invoice is None else str(invoice["id"])
        record: Record | None = None
        if found is not None:
            params = {"include": "invoice.balanceModifiers:embed"}
            record = self.http.request(trace, "GET", f"/invoices/{found}", params=params)["invoice"]
        if record is None or record.get("state") != "approved":
            raise RejectedError(
                f"Billy has no approved invoice {number} to {purpose}"
                f" ({purpose} needs booked invoices: set book = true)"
            )
        self._ids[("invoice", number)] = str(record["id"])
        return record

    # Payments, refunds and vouchers.

    def _modifiers(self, trace: Trace, invoice: Record) -> list[Record]:
        """The invoice's balance modifiers: embedded in it, or read off Billy's list of them
        where a service does not embed them (only those whose subject is the invoice)."""
        if isinstance(invoice.get("balanceModifiers"), list):
            return list(invoice["balanceModifiers"])
        subject = f"invoice:{invoice['id']}"
        return [
            modifier
            for modifier in self._pages(trace, "balanceModifiers")
            if _text(modifier.get("subjectReference")) == subject
        ]

    def _payments_on(self, trace: Trace, invoice: Record) -> Iterator[tuple[str, Record, int]]:
        """The bank payments on the invoice that stand, with what each settled of it (in the
        invoice's currency, as its balance modifier says)."""
        currency = str(invoice.get("currencyId"))
        for modifier in self._modifiers(trace, invoice):
            reference = _text(modifier.get("modifierReference"))
            if modifier.get("isVoided") or not reference.startswith("bankPayment:"):
                continue
            payment_id = reference.removeprefix("bankPayment:")
            payment = self.http.request(trace, "GET", f"/bankPayments/{payment_id}")
            payment = payment["bankPayment"]
            if payment.get("isVoided"):
                continue
            yield payment_id, payment, abs(minor(modifier.get("amount"), currency))

    def _payment(
        self, trace: Trace, payload: PaymentMessage | RefundMessage, kind: PaymentKind
    ) -> dict[str, Any]:
        invoice = self._approved_invoice(trace, str(payload["invoice_number"]), kind)
        side = "debit" if kind == "payment" else "credit"
        same = [
            payment_id
            for payment_id, payment, settled in self._payments_on(trace, invoice)
            if payment.get("cashSide") == side
            and payment.get("entryDate") == payload["date"]
            and settled == payload["amount"]
        ]
        if len(same) > payload["ordinal"]:
            return {kind: same[payload["ordinal"]], "invoice": invoice["id"]}
        account = self._bank_account(trace, self.chart.account("bank", payload["method"]))
        body = {
            "entryDate": payload["date"],
            "cashSide": side,
            "cashAccountId": account["id"],
            "associations": [{"subjectReference": f"invoice:{invoice['id']}"}],
            **self._cash(trace, payload, invoice, account),
        }
        created = self.http.request(trace, "POST", "/bankPayments", json={"bankPayment": body})
        return {kind: created["bankPayments"][0]["id"], "invoice": invoice["id"]}

    def _cash(
        self,
        trace: Trace,
        payload: PaymentMessage | RefundMessage,
        invoice: Record,
        account: Record,
    ) -> dict[str, Any]:
        """`cashAmount` in the cash account's currency, with `cashExchangeRate` where that is
        not the invoice's: the event's rate, else the rate Billy applied to the invoice."""
        currency = payload["currency"]
        cash_currency = str(account.get("currencyId") or self._base_currency(trace))
        if cash_currency == currency:
            return {"cashAmount": major(payload["amount"], currency)}
        rate = rate_of(payload.get("exchange_rate")) or rate_of(invoice.get("exchangeRate"))
        if rate is None or cash_currency != self._base_currency(trace):
            raise RejectedError(
                f"no exchange rate from {currency} to {cash_currency} for"
                f" {payload['payment_id']}: give exchange_rate on"
                " the payment, or pay into an account in the invoice's currency"
            )
        cash = _settling(payload["amount"], currency, rate, cash_currency)
        return {"cashAmount": major(cash, cash_currency), "cashExchangeRate": decimal_rate(rate)}

    def _recognition(
        self, trace: Trace, payload: RecognitionMessage, source: str
    ) -> dict[str, Any]:
        reference = f"subledger:recognition:{source}"
        existing = self._first(
            trace,
            "daybookTransactions",
            lambda r: _text(r.get("apiType")) == reference,
            apiType=reference,
        )
        if existing is not None:
            return {"voucher": existing["id"]}
        lines = [
            {
                "accountNo": int(self._account_no(line["account"])),
                "amount": major(line["amount"], line["currency"]),
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


def _settling(amount: int, currency: str, rate: Fraction, cash_currency: str) -> int:
    """The cash amount (minor units of `cash_currency`) that settles exactly `amount` of
    `currency` at `rate` when Billy converts it back (`rhu(cash / rate)`): the converted amount,
    or the nearest one that does (there is one whenever a minor unit of `currency` is worth at
    least one of `cash_currency`)."""
    first = converted(amount, currency, rate, cash_currency)
    for cash in (first, first - 1, first + 1, first - 2, first + 2):
        if converted(cash, cash_currency, 1 / rate, currency) == amount:
            return cash
    raise RejectedError(
        f"{amount} of {currency} cannot be paid exactly in {cash_currency} at {rate}: pay into"
        " an account in the invoice's currency"
    )
