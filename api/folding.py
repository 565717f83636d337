"""The projections brought up to the end of the log before they are read (by the commands, the
dispatcher and the demo), beside a process that may be folding them already."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from subledger.adapters.backends import Backend, Notifications, backend_of
from subledger.adapters.log_follower import fold_turn, folders_reach
from subledger.domain.ledger import Ledger
from subledger.projections.runner import ProjectionMovedError, ProjectionRunner


def catch_up(runner: ProjectionRunner, backend: Backend | None = None) -> None:
    """Bring the projections at least to the end of the log as it is now.

    Where another process folds a projection (`serve` or `subledger project` on PostgreSQL),
    wait for it to get there rather than fold the same pages beside it, and fold here only
    those no process folds: under load the dispatcher's once-a-second catch-up folded every
    page a second time and read every kept table again, and the folder fell further behind.
    Folding here, what another process folds first counts: chasing a log that keeps growing,
    a second folder lost page after page to the first (the dispatcher enqueued nothing while
    the appends lasted)."""
    end = runner.log.last_position()
    names = list(runner.projections)
    with fold_turn(_notifications(runner, backend), names) as mine:
        if mine:
            _fold_to(runner, end, mine)
        others = [name for name in names if name not in mine]
        if others and not folders_reach(runner, end, others):
            _fold_to(runner, end, others)  # their folders stood still: fold them here


def _fold_to(runner: ProjectionRunner, end: int, names: Collection[str]) -> None:
    runner.prepare(names)
    while True:
        try:
            runner.catch_up(upto=end, names=names)
            return
        except ProjectionMovedError:
            continue


def _notifications(runner: ProjectionRunner, backend: Backend | None) -> Notifications | None:
    """Where the runner's log announces appends (to find whether another process leads the
    folding): its backend's, the given one or the one its ledger is found on."""
    log = runner.log
    if not isinstance(log, Ledger):
        return None  # a log with no store under it: no other process can fold it
    return (backend or backend_of(log)).notifications(log)


@contextmanager
def caught_up_snapshots(
    runner: ProjectionRunner, *names: str, backend: Backend | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The named projections' stored rows, caught up to the end of the log and all at one
    position (read again if another process folded between two of the reads)."""
    while True:
        catch_up(runner, backend)
        with ExitStack() as stack:
            taken = {name: stack.enter_context(runner.store.snapshot(name)) for name in names}
            positions = {position for position, _ in taken.values()}
            if len(positions) == 1:
                yield positions.pop(), {name: rows for name, (_, rows) in taken.items()}
                return
