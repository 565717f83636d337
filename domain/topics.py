"""The topics stored events name their classes by, today's and those of earlier releases.

A stored event names its class by topic, `module:qualified name`. Before the project was
installed as one package, `subledger`, the domain's modules were top-level (`domain.invoice`),
so events stored then say `domain.invoice:Invoice.Issued`, and a created aggregate's event
names its aggregate as `domain.customer:Customer`. `register_earlier_topics` makes those
resolve to today's classes; `stored_topics` gives every topic a class may be stored under, for
reads that select events by topic in the store itself.
"""

from __future__ import annotations

import sys

from eventsourcing.utils import get_topic, register_topic

#: Package names of earlier releases → today's.
EARLIER_PACKAGES = {"domain": "subledger.domain"}


def register_earlier_topics() -> None:
    """Resolve `domain.…` topics as `subledger.domain.…` (idempotent)."""
    for earlier, today in EARLIER_PACKAGES.items():
        register_topic(earlier, sys.modules[today])


def stored_topics(kind: type) -> list[str]:
    """Every topic events of class `kind` may be stored under, today's first."""
    topic = get_topic(kind)
    return [topic] + [
        earlier + topic.removeprefix(today)
        for earlier, today in EARLIER_PACKAGES.items()
        if topic.startswith(today + ".")
    ]
