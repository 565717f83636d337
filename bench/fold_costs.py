"""Where a projection's rebuild spends its time, per event, stage by stage, on PostgreSQL.

    python bench/fold_costs.py [--database-url postgresql://postgres@127.0.0.1:5432/test]
                               [--events 80000] [--repeat 1] [--keep | --schema NAME]
                               [--no-check]

1. Appends a generated business of `--events` events to a fresh schema (as bench/project.py
   does, with its `append_business`), or uses the schema `--schema` left by an earlier `--keep`.
2. Reads the whole log with raw psycopg (binary, keyset pages of 2,000 rows): the base the
   stages are compared with.
3. Rebuilds each projection alone, and then all four together, in this process with the
   runner the service uses (`ProjectionRunner`), its log, store and projections wrapped in
   timers: (a) reading and decoding the log (`read_entries`), (b) the folds (`fold` calls),
   (c) `keys()` and loading the keyed rows they name (`load`), (d) writing each page's rows,
   positions and checkpoints (`commit`), and what is left (the runner's own work: choosing a
   page's events, collecting the changed rows). Prints, per projection, events/s of the log
   and µs per event of the log for each stage, and this process's CPU time; `--repeat`
   rebuilds each that many times and keeps the quickest.
4. Runs `subledger projections check` on the rows the last rebuild made (unless `--no-check`),
   and fails if any check fails.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import parser_for, raw_read, scratch_schema, vacuum  # noqa: E402
from bench.project import append_business, check  # noqa: E402
from subledger.adapters.backends import backend_for  # noqa: E402
from subledger.adapters.store import store_env  # noqa: E402
from subledger.api.composition import tune_garbage_collector  # noqa: E402
from subledger.domain.ledger import Entry, Ledger  # noqa: E402
from subledger.projections.engine import Projection, Row, RowKey, Rows, Table  # noqa: E402
from subledger.projections.journal import JournalProjection  # noqa: E402
from subledger.projections.mrr import MrrProjection  # noqa: E402
from subledger.projections.outbox import OutboxProjection  # noqa: E402
from subledger.projections.revenue import RevenueProjection  # noqa: E402
from subledger.projections.runner import Move, ProjectionRunner  # noqa: E402

STAGES = ("read", "fold", "keys", "load", "commit")


@dataclass
class Clock:
    """Seconds spent in each stage, and the rows written."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    written: int = 0
    #: This process's CPU seconds over the rebuild (on a busy machine, wall time also counts
    #: the waits for a core).
    cpu: float = 0.0


class TimedLog:
    def __init__(self, ledger: Ledger, clock: Clock) -> None:
        self.ledger, self.clock = ledger, clock

    def last_position(self) -> int:
        return self.ledger.last_position()

    def read_entries(
        self, after: int, upto: int, limit: int, event_types: Collection[type]
    ) -> list[Entry]:
        started = time.perf_counter()
        entries = self.ledger.read_entries(after, upto, limit, event_types)
        self.clock.seconds["read"] += time.perf_counter() - started
        return entries


class TimedStore:
    """The store, its `load` and `commit` timed; everything else passed through."""

    def __init__(self, store: Any, clock: Clock) -> None:
        self.store, self.clock = store, clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def load(self, table: Table, keys: Collection[RowKey]) -> dict[RowKey, Row]:
        started = time.perf_counter()
        rows: dict[RowKey, Row] = self.store.load(table, keys)
        self.clock.seconds["load"] += time.perf_counter() - started
        return rows

    def commit(
        self, changes: Mapping[Table, Mapping[RowKey, Row]], moves: Sequence[Move], *more: Any
    ) -> None:
        """The page's rows and positions (and whatever else the runner writes with them: its
        checkpoints)."""
        started = time.perf_counter()
        self.store.commit(changes, moves, *more)
        self.clock.seconds["commit"] += time.perf_counter() - started
        self.clock.written += sum(len(rows) for rows in changes.values())


class TimedProjection(Projection):
    """A projection whose `keys` and `fold` calls are timed (the keys read out whole)."""

    def __init__(self, inner: Projection, clock: Clock) -> None:
        self.inner, self.clock = inner, clock
        self.name = inner.name  # type: ignore[misc]
        self.version = inner.version  # type: ignore[misc]
        self.tables = inner.tables  # type: ignore[misc]
        self.event_types = inner.event_types  # type: ignore[misc]
        self.referencing_types = inner.referencing_types  # type: ignore[misc]
        self.referenced_tables = inner.referenced_tables  # type: ignore[misc]
        self.answered_as_of_the_past = inner.answered_as_of_the_past  # type: ignore[misc]

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def keys(self, event: Any) -> Iterable[tuple[Table, RowKey]]:
        started = time.perf_counter()
        keys = list(self.inner.keys(event))
        self.clock.seconds["keys"] += time.perf_counter() - started
        return keys

    def fold(self, rows: Rows, entry: Entry) -> None:
        started = time.perf_counter()
        self.inner.fold(rows, entry)
        self.clock.seconds["fold"] += time.perf_counter() - started


def projections() -> list[Projection]:
    return [RevenueProjection(), MrrProjection(), JournalProjection(), OutboxProjection()]


def timed_rebuild(url: str, names: Sequence[str]) -> tuple[int, float, Clock]:
    """Rebuild the named projections in one runner: the log's end, the seconds, the stages."""
    clock = Clock()
    ledger = Ledger(store_env(url))
    try:
        store = TimedStore(backend_for(url).row_store(ledger), clock)
        chosen = [TimedProjection(p, clock) for p in projections() if p.name in names]
        runner = ProjectionRunner(TimedLog(ledger, clock), store, chosen)  # type: ignore[arg-type]
        runner.prepare()
        for name in names:
            store.store.reset(runner.projections[name])
        runner.prepare()  # reads the emptied rows back, as a rebuild does
        clock.seconds = dict.fromkeys(STAGES, 0.0)
        started, cpu = time.perf_counter(), time.process_time()
        end = runner.catch_up()
        clock.cpu = time.process_time() - cpu
        return end, time.perf_counter() - started, clock
    finally:
        ledger.close()


def report(label: str, end: int, seconds: float, clock: Clock, raw: float) -> None:
    micro = {stage: clock.seconds[stage] * 1e6 / end for stage in STAGES}
    rest = seconds * 1e6 / end - sum(micro.values())
    rate = end / seconds
    print(
        f"{label:8} {rate:9,.0f} {rate / raw:6.3f} "
        + " ".join(f"{micro[stage]:7.1f}" for stage in STAGES)
        + f" {rest:7.1f} {seconds * 1e6 / end:7.1f} {clock.cpu * 1e6 / end:7.1f}"
        + f" {clock.written / end:7.2f}",
        flush=True,
    )


def main() -> None:
    parser = parser_for(__doc__)
    parser.add_argument("--events", type=int, default=80_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    parser.add_argument("--schema", help="use this schema (left by --keep) instead of appending")
    parser.add_argument("--no-check", action="store_true", help="skip `projections check`")
    arguments = parser.parse_args()
    database_url = arguments.database_url
    with scratch_schema(database_url, "bench_folds", bool(arguments.keep or arguments.schema)) as (
        schema,
        url,
    ):
        if arguments.schema:
            schema, url = arguments.schema, f"{database_url}?schema={arguments.schema}"
        else:
            print(f"appending {arguments.events:,} events")
            append_business(url, arguments.events)
            vacuum(database_url, schema, "subledger_events", "subledger_log")
        raw = raw_read(database_url, schema)
        tune_garbage_collector()
        print(f"raw psycopg read of the log: {raw:,.0f} rows/s ({1e6 / raw:.1f} µs a row)")
        print(
            "µs per event of the log (wall time; `cpu`: this process's CPU time);"
            " `× raw`: events/s over the raw read's rows/s"
        )
        print(
            f"{'rebuild':8} {'events/s':>9} {'× raw':>6} "
            + " ".join(f"{stage:>7}" for stage in STAGES)
            + f" {'rest':>7} {'total':>7} {'cpu':>7} {'rows/ev':>7}"
        )
        names = [projection.name for projection in projections()]
        for chosen in [[name] for name in names] + [names]:
            runs = [timed_rebuild(url, chosen) for _ in range(arguments.repeat)]
            end, seconds, clock = min(runs, key=lambda run: run[1])
            report("all" if len(chosen) > 1 else chosen[0], end, seconds, clock, raw)
        if not arguments.no_check:
            seconds, findings = check(url)
            print(f"subledger projections check: {seconds:.1f} s")
            for finding in findings:
                print(f"  {finding}")


if __name__ == "__main__":
    main()
