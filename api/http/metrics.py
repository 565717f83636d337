"""What `GET /metrics` shows, in Prometheus' text format (docs/operating.md, "Metrics").

Two kinds of family:
- Counted by the processes as things happen: each HTTP request's duration (`time_request`, an
  observer of api/http/observed.py's middleware) and each request to a sync target
  (`count_target_requests`, told by the targets' HTTP clients). Under `subledger serve
  --workers N` every worker counts into files of prometheus_client's multi-process mode, in a
  directory the command makes for each start and removes when it stops (`metrics_directory`);
  a scrape, answered by any one worker, adds up those of every worker.
- Facts of the database, read when scraped (`DatabaseFacts`): the log's last position, each
  projection's position and lag, the delivery log's messages by status and its oldest unsent
  one. Every worker reads the same rows, so these need no sharing between processes.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from subledger.adapters.sync.http import TargetHTTP
from subledger.adapters.sync.log_records import STATUSES
from subledger.api.http.observed import Handled
from subledger.api.http.projection_reads import Reader
from subledger.api.sync import Sync
from subledger.projections.partitions import unit_names

logger = logging.getLogger("subledger.api")

#: The directory of prometheus_client's multi-process mode (read by it when first imported).
MULTIPROCESS_DIRECTORY: Final = "PROMETHEUS_MULTIPROC_DIR"
#: What the answer is: the text format every Prometheus server reads.
CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
#: The route of a request that matched none (a 404, or refused before routing).
UNMATCHED: Final = "unmatched"

# No `_created` series: the multi-process mode has none, and a single process shows the same.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: This process's own counts (in a single process; under `serve --workers N` each value is
#: also written to the multi-process directory, which a scrape reads instead).
_PROCESS = CollectorRegistry(auto_describe=True)

HTTP_DURATION = Histogram(
    "subledger_http_request_duration_seconds",
    "Seconds from a request's arrival to the end of its answer, by route template, method and"
    " status.",
    ["route", "method", "status"],
    registry=_PROCESS,
)
SYNC_REQUESTS = Counter(
    "subledger_sync_requests",
    "Requests sent to a sync target, by target and the answer's HTTP status ('timeout' or"
    " 'unreachable' when none came).",
    ["target", "status"],
    registry=_PROCESS,
)


# Counted as it happens.


def count_target_requests(targets: Mapping[str, object]) -> None:
    """Count every request that the targets' HTTP clients send, under each target's name."""
    for name, target in targets.items():
        http = getattr(target, "http", None)
        if isinstance(http, TargetHTTP):
            http.on_request = partial(_count_request, name)


def _count_request(target: str, status: str) -> None:
    SYNC_REQUESTS.labels(target=target, status=status).inc()


def time_request(handled: Handled) -> None:
    """Times an HTTP request (an observer of api/http/observed.py's middleware), by its route's
    template (`/v1/sync/messages/{message_id}`, never the path itself, so that the number of
    series stays that of the routes), its method and its answer's status."""
    HTTP_DURATION.labels(
        route=UNMATCHED if handled.route is None else handled.route,
        method=handled.method,
        status=str(handled.status),
    ).observe(handled.seconds)


# Read from the database when scraped.


class DatabaseFacts(Collector):
    """The families that are facts of the database: the log, the projections' positions and
    the delivery log, read at each scrape. A database that does not answer shows as
    `subledger_store_up 0` (and the counted families still show)."""

    def __init__(self, reader: Reader, sync: Sync | None) -> None:
        self.reader = reader
        self.sync = sync

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "subledger_store_up", "1 when the database answered this scrape's reads, else 0."
        )
        try:
            families = list(self._log_and_projections()) + list(self._sync())
        except Exception as error:  # a scrape answers whatever the database does
            logger.warning("metrics: the database did not answer: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _log_and_projections(self) -> Iterator[Metric]:
        # Positions first, then the log's end: a lag read so is never below zero.
        stored = self.reader.store.stored()
        last = self.reader.ledger.last_position()
        appended = CounterMetricFamily(
            "subledger_events_appended",
            "Events appended to the log, by every process, since the log began: its last position.",
        )
        appended.add_metric([], last)
        yield appended
        position = GaugeMetricFamily(
            "subledger_projection_position",
            "The log position each projection has folded up to.",
            labels=["projection"],
        )
        lag = GaugeMetricFamily(
            "subledger_projection_lag_events",
            "Events of the log that each projection has not folded yet.",
            labels=["projection"],
        )
        for name in self.reader.projections:
            # Folded in partitions, a projection is as far as the least of them.
            folded = min(
                stored[unit].position if unit in stored else 0
                for unit in unit_names(name, self.reader.partitions)
            )
            position.add_metric([name], folded)
            lag.add_metric([name], max(0, last - folded))
        yield position
        yield lag

    def _sync(self) -> Iterator[Metric]:
        if self.sync is None:  # a memory store syncs nothing
            return
        summary = self.sync.delivery.summary()
        now = datetime.now(UTC)
        messages = GaugeMetricFamily(
            "subledger_sync_messages",
            "Messages in the delivery log, by target and status.",
            labels=["target", "status"],
        )
        oldest = GaugeMetricFamily(
            "subledger_sync_oldest_pending_seconds",
            "Seconds the oldest unsent (pending or sending) message of each target has waited;"
            " 0 when none waits.",
            labels=["target"],
        )
        for name in sorted(set(self.sync.targets) | set(summary)):
            found = summary.get(name)
            counts = found.counts if found is not None else {}
            for status in STATUSES:
                messages.add_metric([name, status], counts.get(status, 0))
            waited = found.oldest_pending_seconds(now) if found is not None else None
            oldest.add_metric([name], waited or 0)
        yield messages
        yield oldest


class _Counted(Collector):
    """This process's own counts, as one collector of a scrape's registry."""

    def collect(self) -> Iterator[Metric]:
        return iter(_PROCESS.collect())


def exposition(reader: Reader, sync: Sync | None) -> bytes:
    """The scrape's answer: the counted families (this process's, or every worker's from the
    multi-process directory) and the database's facts."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROCESS_DIRECTORY):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Counted())
    registry.register(DatabaseFacts(reader, sync))
    return generate_latest(registry)


@contextmanager
def metrics_directory() -> Iterator[str]:
    """A fresh directory for the counts of `serve --workers N`'s processes, named in the
    environment that they inherit, and removed when the server stops. Made inside the one
    `PROMETHEUS_MULTIPROC_DIR` names when it is set, else in the system's temporary directory."""
    before = os.environ.get(MULTIPROCESS_DIRECTORY)
    path = tempfile.mkdtemp(prefix="subledger-metrics-", dir=before or None)
    os.environ[MULTIPROCESS_DIRECTORY] = path
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if before is None:
            os.environ.pop(MULTIPROCESS_DIRECTORY, None)
        else:
            os.environ[MULTIPROCESS_DIRECTORY] = before
