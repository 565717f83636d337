"""A customer's personal fields for a message about to be sent, opened from the log
(docs/specification.md §6).

Outbox messages and the delivery log carry a customer's id and its non-personal fields only. A
target needs more: a contact's name, e-mail, address, VAT number and EAN, an invoice's e-mail
or EAN to deliver to. Just before a message is sent, these are read from the customer's own
events up to the message's position (so a contact says what the customer was at that point of
the log), opened with the customer's key, and handed to the target with the message; they are
never written to the delivery log.

Once the customer is erased its key is gone, and every message not yet sent goes out as the
erased customer: named `ERASED_NAME`, with no e-mail, address, VAT number or EAN (its
non-personal fields, the customer number among them, stay). Its invoices are then still
booked, on a contact that no longer says who the customer was, and none is e-mailed or
e-invoiced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Final

from subledger.adapters.store.sealing import ERASED, opened
from subledger.adapters.sync.log_records import Message
from subledger.domain.customer import Customer
from subledger.domain.ledger import Ledger
from subledger.domain.personal import PERSONAL_FIELDS
from subledger.domain.values import CLEARED, Address

#: The name a contact of an erased customer is sent with.
ERASED_NAME: Final = "Erased customer"
#: What stands for personal data in an attempt's error and requests.
REDACTED: Final = "[personal data]"


class PersonalDetails:
    """Opens the personal fields of the customers that messages are about, from the log."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def personal(self, customer_id: str, upto: int) -> dict[str, Any]:
        """The customer's personal fields as its events up to position `upto` left them (an
        address as an object); the erased customer's placeholder once its key is gone."""
        keys = self.ledger.sealing_keys([customer_id])
        found: dict[str, Any] = {}
        for entry in self.ledger.iter_aggregate_entries(Customer.id_for(customer_id), upto):
            event: Any = entry.event
            given = opened(event, keys)
            if given is ERASED:
                return {"name": ERASED_NAME, "erased": True}
            assert isinstance(given, dict)
            for name in PERSONAL_FIELDS:
                if getattr(event, name, None) is CLEARED:
                    found.pop(name, None)
            found.update(given)
        address = found.get("address")
        if isinstance(address, Address):
            found["address"] = dataclasses.asdict(address)
        return found

    def open(self, message: Message) -> Message:
        """The message with its customer's personal fields as of its position, ready to send
        (a message about no customer as it is)."""
        payload = message.payload
        if message.kind == "contact":
            opened_payload = self._with_personal(payload, message.lane, message.seq)
        elif isinstance(payload.get("customer"), dict):
            customer = self._with_personal(payload["customer"], message.lane, message.seq)
            opened_payload = {**payload, "customer": customer}
        else:
            return message
        return dataclasses.replace(message, payload=opened_payload)

    @staticmethod
    def redact(text: str, message: Message) -> str:
        """`text` (a target's error, a request line) with the personal values the opened
        `message` carries blotted out, so that the delivery log keeps none even when a target
        quotes one back."""
        for value in sorted(set(_personal_values(message.payload)), key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text

    def _with_personal(self, fields: dict[str, Any], customer_id: str, upto: int) -> dict[str, Any]:
        # Fields of messages enqueued before personal data was sealed are dropped too.
        kept = {name: value for name, value in fields.items() if name not in PERSONAL_FIELDS}
        return {**kept, **self.personal(customer_id, upto)}


def _personal_values(payload: dict[str, Any]) -> Iterator[str]:
    """The personal values a message carries. An address's postcode is left out: alone it
    names no one, and as a short number it would blot out durations and ids."""
    customer = payload.get("customer")
    for holder in (payload, customer if isinstance(customer, dict) else {}):
        for name in PERSONAL_FIELDS:
            value = holder.get(name)
            if isinstance(value, dict):
                yield from (str(value[part]) for part in ("street", "city") if value.get(part))
            elif value and value != ERASED_NAME:
                yield str(value)
