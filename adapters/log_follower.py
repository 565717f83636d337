"""Following the log: waking the projection runner when events are appended, and running it.

On PostgreSQL the runner listens on the log's notification channel (every append notifies it),
and the projections are shared out among the processes that fold (`serve`, `subledger
project`, on any number of hosts): each projection is folded by the one process that holds its
advisory lock. A process folding takes a member's slot (another advisory lock) and the
projections that fall to it from its rank among the members (`share`);
when a process joins, the others let go of what now falls to it, and when one dies, PostgreSQL
releases its locks and the others take its projections on their next turn. On SQLite and in
memory, appends made in the same process wake it at once, it folds every projection, and on
SQLite it also polls for appends made by other processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from typing import Any, Protocol, cast

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from subledger.adapters.backends import Backend, Notifications, backend_of
from subledger.domain.ledger import Ledger
from subledger.projections.runner import ProjectionMovedError, ProjectionRunner

logger = logging.getLogger("subledger.projections")

#: How often a process with no projection to fold looks again whether one fell to it, in seconds.
STANDBY_SECONDS = 2.0
#: How long to wait between checks when nothing says the log changed, in seconds.
POLL_SECONDS = 0.2
#: The longest pause between two attempts to follow a log that failed (the database went away),
#: in seconds: short enough that reads are not kept waiting long once it is back.
RETRY_CAP_SECONDS = 5.0
#: How long another process's folding may stand still before a process waiting for it folds
#: the log itself, in seconds (a page of 2,000 events can take a few seconds on a busy machine).
FOLDER_PATIENCE_SECONDS = 10.0
#: How long a process folds before it looks again at which projections are its own (a process
#: that joined, or died), in seconds.
TURN_SECONDS = 2.0
#: The member slots there are: at most this many processes share the folding of one schema.
MEMBER_SLOTS = 256


class Waiter(Protocol):
    def claim(self, names: Sequence[str]) -> frozenset[str]:
        """The projections of `names` (the costliest first) this process may fold now (on
        PostgreSQL: those whose locks it holds, having let go of those that fell to another
        member)."""
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

    def claim(self, names: Sequence[str]) -> frozenset[str]:
        return frozenset(names)

    def wait(self, timeout: float) -> None:
        if not self.stopped.is_set():
            self.appended.wait(min(timeout, self.poll_seconds))
        self.appended.clear()

    def close(self) -> None:
        return None


def share(names: Sequence[str], rank: int, count: int) -> set[str]:
    """The projections of `names` (the costliest first) that fall to the member of `rank` among
    `count`: dealt out like cards, one round forwards and the next backwards, so that the one
    that gets the costliest also gets the cheapest (of four between two: the first and the
    fourth to one, the second and the third to the other)."""
    mine = set()
    for index, name in enumerate(names):
        lap, seat = divmod(index, count)
        if (seat if lap % 2 == 0 else count - 1 - seat) == rank:
            mine.add(name)
    return mine


def _connection_kwargs(datastore: PostgresDatastore) -> dict[str, Any]:
    """How the datastore's pool connects, for a connection of one's own."""
    configured = datastore.pool.kwargs
    kwargs = dict(configured() if callable(configured) else configured or {})
    kwargs.pop("row_factory", None)
    kwargs.pop("application_name", None)
    return kwargs


def _fold_key(datastore: PostgresDatastore) -> str:
    """The first half of each projection's lock (the second is its name's hash)."""
    return f"{datastore.schema} fold"


def _members_key(datastore: PostgresDatastore) -> str:
    """The first half of each member's slot lock (the second is the slot's number)."""
    return f"{datastore.schema} folders"


#: The advisory locks of one kind held in this database, by their second half, with the
#: application name of the connection holding each.
_HELD = """
SELECT lock.objid::int8, activity.application_name
FROM pg_locks AS lock LEFT JOIN pg_stat_activity AS activity ON activity.pid = lock.pid
WHERE lock.locktype = 'advisory' AND lock.granted AND lock.objsubid = 2
  AND lock.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND lock.classid = hashtext(%s)::oid
"""


class PostgresWaiter:
    """PostgreSQL: LISTEN on the log's channel, on a connection that also holds this process's
    member slot and the locks of the projections it folds (released by PostgreSQL if the
    process dies or the connection drops)."""

    def __init__(
        self, datastore: PostgresDatastore, channel: str, stopped: threading.Event
    ) -> None:
        self.datastore = datastore
        self.channel = channel
        self.stopped = stopped
        self.connection: psycopg.Connection[tuple[object, ...]] | None = None
        self.slot: int | None = None
        self.owned: set[str] = set()

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        if self.connection is None or self.connection.closed:
            self.connection = psycopg.connect(
                **_connection_kwargs(self.datastore),
                application_name=f"subledger fold pid {os.getpid()} on {socket.gethostname()}",
                autocommit=True,
            )
            self.connection.execute(SQL("LISTEN {0}").format(Identifier(self.channel)))
            self.slot = None
            self.owned = set()
        return self.connection

    def _try_lock(self, key: str, second: str | int) -> bool:
        found = (
            self._connect()
            .execute(
                "SELECT pg_try_advisory_lock(hashtext(%s), "
                + ("hashtext(%s))" if isinstance(second, str) else "%s)"),
                (key, second),
            )
            .fetchone()
        )
        return bool(found and found[0])

    def take(self, names: Collection[str]) -> frozenset[str]:
        """Lock whichever of `names` no other process folds, without taking a member's slot
        (a command catching up once); `close()` lets go of them."""
        key = _fold_key(self.datastore)
        self.owned |= {name for name in names if name in self.owned or self._try_lock(key, name)}
        return frozenset(self.owned)

    def claim(self, names: Sequence[str]) -> frozenset[str]:
        connection = self._connect()
        members_key = _members_key(self.datastore)
        if self.slot is None:
            self.slot = next(
                (slot for slot in range(MEMBER_SLOTS) if self._try_lock(members_key, slot)), None
            )
            if self.slot is None:
                return frozenset()  # as many processes fold as there are slots: stand by
        members = sorted(cast(int, slot) for slot, _ in connection.execute(_HELD, (members_key,)))
        rank, count = members.index(self.slot), len(members)
        mine = share(names, rank, count)
        key = _fold_key(self.datastore)
        for name in sorted(self.owned - mine):
            connection.execute("SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", (key, name))
            self.owned.discard(name)
        self.take(mine)
        return frozenset(self.owned)

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
        self.slot = None
        self.owned = set()


def fold_owners(datastore: PostgresDatastore, names: Collection[str]) -> dict[str, str]:
    """Which process folds each of `names` that one folds now: its process id and host."""
    with psycopg.connect(**_connection_kwargs(datastore), autocommit=True) as connection:
        hashes = dict(
            connection.execute(
                "SELECT hashtext(name)::oid::int8, name FROM unnest(%s::text[]) AS name",
                (list(names),),
            ).fetchall()
        )
        held = connection.execute(_HELD, (_fold_key(datastore),)).fetchall()
    return {
        hashes[objid]: str(application or "?").removeprefix("subledger fold ")
        for objid, application in held
        if objid in hashes
    }


@contextlib.contextmanager
def fold_turn(
    notifications: Notifications | None, names: Collection[str]
) -> Iterator[frozenset[str]]:
    """The projections of `names` this process may fold now: on PostgreSQL (a log with
    `notifications`), those no other process folds (`serve`, `subledger project`), their locks
    held for the block; all of them on SQLite and in memory (None)."""
    if notifications is None:
        yield frozenset(names)
        return
    waiter = PostgresWaiter(notifications.datastore, notifications.channel, threading.Event())
    try:
        yield waiter.take(names)
    finally:
        waiter.close()


def folders_reach(runner: ProjectionRunner, end: int, names: Collection[str]) -> bool:
    """Wait while other processes fold the projections of `names` towards position `end`: True
    once each is stored at or past it; False if none moved for `FOLDER_PATIENCE_SECONDS` (its
    folder stopped, or folds another version of it), so that the caller folds instead."""
    # The folders may not have made the tables yet (they are starting).
    units = {name: runner.units[name] for name in runner.units_of(names)}
    runner.store.create_tables(table for unit in units.values() for table in unit.tables)
    reached, since = -1, time.monotonic()
    while True:
        stored = runner.store.stored()
        now = min(
            stored[name].position
            if name in stored and stored[name].fingerprint == unit.fingerprint()
            else -1
            for name, unit in units.items()
        )
        if now >= end:
            return True
        if now != reached:
            reached, since = now, time.monotonic()
        elif time.monotonic() - since > FOLDER_PATIENCE_SECONDS:
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
        units = self.runner.units.values()
        names = [p.name for p in sorted(units, key=lambda p: (-p.fold_cost, p.name))]
        owned: frozenset[str] = frozenset()
        try:
            while not self.stopped.is_set():
                try:
                    claimed = self.waiter.claim(names)
                    if not claimed:
                        owned = claimed
                        self.stopped.wait(STANDBY_SECONDS)
                        continue
                    if claimed - owned:
                        self.runner.forget()  # another process folded those until now
                    owned = claimed
                    end = self.runner.log.last_position()
                    turn_ends = time.monotonic() + TURN_SECONDS

                    def go_on(ends: float = turn_ends) -> bool:
                        return time.monotonic() < ends and not self.stopped.is_set()

                    self.runner.catch_up(upto=end, names=owned, go_on=go_on)
                    failures = 0
                    if all(self.runner.position(name) >= end for name in owned):
                        self.waiter.wait(1.0)
                except ProjectionMovedError:
                    continue  # another runner folded that page: carry on from where it got
                except Exception:
                    # The database went away, say: try again, less and less often.
                    failures += 1
                    owned = frozenset()
                    logger.exception("projections: following the log failed (%d)", failures)
                    self.waiter.close()
                    self.stopped.wait(min(RETRY_CAP_SECONDS, 0.5 * 2**failures))
        finally:
            self.waiter.close()
