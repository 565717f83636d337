"""Following the log: waking the projection runner when events are appended, and running it.

On PostgreSQL the runner listens on the log's notification channel (every append notifies it)
and only the process holding an advisory lock folds, so `serve --workers 4` and a separate
`subledger project` never fold the same page four times; the others stand by and take over if
it stops. On SQLite and in memory, appends made in the same process wake it at once, and on
SQLite it also polls for appends made by other processes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Protocol

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from subledger.adapters.backends import Backend, Notifications, backend_of
from subledger.domain.ledger import Ledger
from subledger.projections.runner import ProjectionMovedError, ProjectionRunner

logger = logging.getLogger("subledger.projections")

#: How often a runner that is not the leader checks whether it may take over, in seconds.
STANDBY_SECONDS = 2.0
#: How long to wait between checks when nothing says the log changed, in seconds.
POLL_SECONDS = 0.2
#: The longest pause between two attempts to follow a log that failed (the database went away),
#: in seconds: short enough that reads are not kept waiting long once it is back.
RETRY_CAP_SECONDS = 5.0
#: How long another process's folding may stand still before a process waiting for it folds
#: the log itself, in seconds (a page of 2,000 events can take a few seconds on a busy machine).
LEADER_PATIENCE_SECONDS = 10.0


class Waiter(Protocol):
    def lead(self) -> bool:
        """Whether this process may fold now (on PostgreSQL: holds the advisory lock)."""
        ...

    def wait(self, timeout: float) -> None:
        """Return when the log may have grown, or after `timeout` seconds."""
        ...

    def close(self) -> None: ...


class LocalWaiter:
    """SQLite and memory: woken at once by appends made in this process, and looking again
    every `poll_seconds` for appends made by other processes (and whether it was stopped)."""

    def __init__(self, ledger: Ledger, stopped: threading.Event, poll_seconds: float) -> None:
        self.stopped = stopped
        self.poll_seconds = poll_seconds
        self.appended = threading.Event()
        ledger.on_append(self.appended.set)

    def lead(self) -> bool:
        return True

    def wait(self, timeout: float) -> None:
        if not self.stopped.is_set():
            self.appended.wait(min(timeout, self.poll_seconds))
        self.appended.clear()

    def close(self) -> None:
        return None


class PostgresWaiter:
    """PostgreSQL: LISTEN on the log's channel, on a connection that also holds the lock of the
    folding leader (released by PostgreSQL if this process dies)."""

    def __init__(
        self, datastore: PostgresDatastore, channel: str, stopped: threading.Event
    ) -> None:
        self.datastore = datastore
        self.channel = channel
        self.stopped = stopped
        self.connection: psycopg.Connection[tuple[object, ...]] | None = None
        self.leading = False

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        if self.connection is None or self.connection.closed:
            configured = self.datastore.pool.kwargs
            kwargs = dict(configured() if callable(configured) else configured or {})
            kwargs.pop("row_factory", None)
            self.connection = psycopg.connect(**kwargs, autocommit=True)
            self.connection.execute(SQL("LISTEN {0}").format(Identifier(self.channel)))
            self.leading = False
        return self.connection

    def lead(self) -> bool:
        if not self.leading:
            found = (
                self._connect()
                .execute(
                    "SELECT pg_try_advisory_lock(hashtext(%s))", (f"{self.datastore.schema} fold",)
                )
                .fetchone()
            )
            self.leading = bool(found and found[0])
        return self.leading

    def wait(self, timeout: float) -> None:
        # In slices, so that stopping never waits for a whole timeout.
        deadline = time.monotonic() + timeout
        connection = self._connect()
        while not self.stopped.is_set() and (left := deadline - time.monotonic()) > 0:
            for _ in connection.notifies(timeout=min(left, POLL_SECONDS), stop_after=1):
                return

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(psycopg.Error):
                self.connection.close()
            self.connection = None
            self.leading = False


@contextlib.contextmanager
def fold_turn(notifications: Notifications | None) -> Iterator[bool]:
    """Whether this process may fold now: on PostgreSQL (a log with `notifications`), False
    while another process leads the folding (`serve`, `subledger project`), else True with the
    leader's lock held for the block; True on SQLite and in memory (None)."""
    if notifications is None:
        yield True
        return
    waiter = PostgresWaiter(notifications.datastore, notifications.channel, threading.Event())
    try:
        yield waiter.lead()
    finally:
        waiter.close()


def leader_reaches(runner: ProjectionRunner, end: int) -> bool:
    """Wait while another process folds towards position `end`: True once every projection of
    `runner` is stored at or past it; False if none moved for `LEADER_PATIENCE_SECONDS` (the
    leader stopped, or folds other versions of them), so that the caller folds instead."""
    # The leader may not have made the tables yet (it is starting).
    runner.store.create_tables(
        table for projection in runner.projections.values() for table in projection.tables
    )
    reached, since = -1, time.monotonic()
    while True:
        stored = runner.store.stored()
        now = min(
            stored[name].position
            if name in stored and stored[name].fingerprint == projection.fingerprint()
            else -1
            for name, projection in runner.projections.items()
        )
        if now >= end:
            return True
        if now != reached:
            reached, since = now, time.monotonic()
        elif time.monotonic() - since > LEADER_PATIENCE_SECONDS:
            return False
        time.sleep(0.05)


def waiter_for(ledger: Ledger, stopped: threading.Event, backend: Backend | None = None) -> Waiter:
    """The waiter the ledger's backend (by default, the one it is found to be on) supports."""
    notifications = (backend or backend_of(ledger)).notifications(ledger)
    if notifications is not None:
        return PostgresWaiter(notifications.datastore, notifications.channel, stopped)
    return LocalWaiter(ledger, stopped, poll_seconds=POLL_SECONDS)


class Follower:
    """Keeps a runner folding what is appended, in a thread, until stopped."""

    def __init__(
        self, ledger: Ledger, runner: ProjectionRunner, backend: Backend | None = None
    ) -> None:
        self.runner = runner
        self.stopped = threading.Event()
        self.waiter = waiter_for(ledger, self.stopped, backend)
        self.thread = threading.Thread(target=self._run, name="projections", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopped.set()
        self.thread.join(timeout)

    def run_here(self) -> None:
        """Follow in the calling thread (the `subledger project` worker) until stopped."""
        self._run()

    def _run(self) -> None:
        failures = 0
        try:
            while not self.stopped.is_set():
                try:
                    if not self.waiter.lead():
                        self.stopped.wait(STANDBY_SECONDS)
                        continue
                    self.runner.catch_up()
                    failures = 0
                    self.waiter.wait(1.0)
                except ProjectionMovedError:
                    continue  # another runner folded that page: carry on from where it got
                except Exception:
                    # The database went away, say: try again, less and less often.
                    failures += 1
                    logger.exception("projections: following the log failed (%d)", failures)
                    self.waiter.close()
                    self.stopped.wait(min(RETRY_CAP_SECONDS, 0.5 * 2**failures))
        finally:
            self.waiter.close()
