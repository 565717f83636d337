"""The ledger's domain: money and dates, the event catalogue, the aggregates and their rules.

Imports the standard library and `eventsourcing` only; it does no I/O of its own.
"""

from subledger.domain.topics import register_earlier_topics

register_earlier_topics()
