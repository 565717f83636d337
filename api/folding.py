"""The projections brought up to the end of the log before they are read (by the commands, the
dispatcher and the demo), beside a process that may be folding them already."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from subledger.adapters.backends import Backend, Notifications, backend_of
from subledger.adapters.log_follower import RETRY_CAP_SECONDS, fold_turn, folders_reach
from subledger.domain.ledger import Ledger
from subledger.projections.runner import ProjectionMovedError, ProjectionRunner

logger = logging.getLogger("subledger.api")

#: How long a folding process is given to finish its page and stop before it is killed (what
#: it had not committed is folded again by the next).
FOLDER_STOP_SECONDS = 30
#: A folding process that ran this long before it exited failed afresh: the next is started
#: after the shortest pause again.
FOLDER_STEADY_SECONDS = 60


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
    names = list(runner.units)
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
            taken = {name: stack.enter_context(runner.snapshot(name)) for name in names}
            positions = {position for position, _ in taken.values()}
            if len(positions) == 1:
                yield positions.pop(), {name: rows for name, (_, rows) in taken.items()}
                return


def start_folder_beside() -> Callable[[], None]:
    """Start `subledger project` in a process of its own, folding for this one (with this
    process's environment, so on the same store and settings) and stopping when it stops or
    dies; started again if it exits (the database was away when it started, say); and how to
    stop it."""
    folder = FolderBeside()
    folder.start()
    return folder.stop


class FolderBeside:
    """A `subledger project` process folding for this one, kept running until `stop`."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._keep, name="folder-beside", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _keep(self) -> None:
        failures = 0
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                started = time.monotonic()
                self._process = process = subprocess.Popen(  # noqa: S603 (our own command)
                    [sys.executable, "-m", "subledger", "project", "--beside", str(os.getpid())],
                    env=os.environ.copy(),
                    stdin=subprocess.DEVNULL,
                )
            code = process.wait()
            if self._stopping.is_set():
                return
            failures = 1 if time.monotonic() - started > FOLDER_STEADY_SECONDS else failures + 1
            pause = min(RETRY_CAP_SECONDS, 0.5 * 2**failures)
            logger.warning(
                "the folding process %s exited (%s): starting another in %.0f s",
                process.pid,
                code,
                pause,
            )
            self._stopping.wait(pause)

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None:
            process.terminate()
            try:
                process.wait(FOLDER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                logger.warning("the folding process %s did not stop in time: killed", process.pid)
                process.kill()
                process.wait()
        self._thread.join(FOLDER_STOP_SECONDS)


def stop_with(parent: int, stopped: threading.Event, every: float = 1.0) -> None:
    """Set `stopped` when the process `parent` that started this one is gone (killed too:
    its child is then another's), looked at every `every` seconds by a thread of its own."""

    def watch() -> None:
        while os.getppid() == parent:
            if stopped.wait(every):
                return
        logger.info("the server process %s is gone: the folding process beside it stops", parent)
        stopped.set()

    threading.Thread(target=watch, name="beside", daemon=True).start()
