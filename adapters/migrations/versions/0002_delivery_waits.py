"""The delivery log learns to wait (transfer on payment, drafts waiting to be booked) and to
find a customer's messages at once.

`sync_messages` gets `document` (the invoice a message belongs to: an invoice's own id, a
credit note's, payment's or refund's `invoice_id`; empty for a contact or a voucher), filled
in here from the payloads of the messages already there, and `waiting_for` (what a waiting
message waits for). Indexes: the claim's walk over claimable messages, the waiting messages
of a document, and a customer's messages at every target.
"""

import json
import sqlite3
from typing import Any

from yoyo import step  # type: ignore[import-untyped]

__depends__ = {"0001_release_0_1"}

_COLUMNS = (
    ("document", "text NOT NULL DEFAULT ''"),
    ("waiting_for", "text"),
)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS sync_messages_claimable ON sync_messages (target, seq)"
    " WHERE status IN ('pending', 'sending', 'waiting')",
    "CREATE INDEX IF NOT EXISTS sync_messages_waiting ON sync_messages"
    " (target, document, seq) WHERE status = 'waiting'",
    "CREATE INDEX IF NOT EXISTS sync_messages_lane ON sync_messages (lane, target, seq)",
)
#: The messages of the kinds that belong to an invoice, without their document yet, 1,000 at
#: a time after an id; and the statement that gives one its document. In SQLite's and
#: psycopg's placeholders.
_UNFILLED = (
    "SELECT id, payload FROM sync_messages WHERE kind IN"
    " ('invoice', 'credit_note', 'payment', 'refund') AND id > {0} AND document = ''"
    " ORDER BY id LIMIT 1000"
)
_FILL = "UPDATE sync_messages SET document = {0} WHERE id = {0}"


def _apply(connection: Any) -> None:
    sqlite = isinstance(connection, sqlite3.Connection)
    unfilled, fill = (statement.format("?" if sqlite else "%s") for statement in (_UNFILLED, _FILL))
    cursor = connection.cursor()
    if sqlite:
        cursor.execute("PRAGMA table_info(sync_messages)")
        present = {row[1] for row in cursor.fetchall()}
        for name, definition in _COLUMNS:
            if name not in present:
                cursor.execute(f"ALTER TABLE sync_messages ADD COLUMN {name} {definition}")
    else:
        for name, definition in _COLUMNS:
            cursor.execute(
                f"ALTER TABLE sync_messages ADD COLUMN IF NOT EXISTS {name} {definition}"
            )
    for statement in _INDEXES:
        cursor.execute(statement)
    after = ""
    while True:
        cursor.execute(unfilled, (after,))
        rows = cursor.fetchall()
        if not rows:
            return
        for message_id, payload in rows:
            document = str(json.loads(payload).get("invoice_id") or "")
            if document:
                cursor.execute(fill, (document, message_id))
        after = rows[-1][0]


step(_apply)
