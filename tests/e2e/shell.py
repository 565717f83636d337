"""Running a page's shell commands as a reader would type them, and comparing what they print
with what the page shows (tests/e2e/test_docs.py).

A page's ```sh blocks run in order in one bash session (so `cd`, variables and background jobs
carry over, as in a terminal), in a directory of the test's, with the virtualenv's `bin` on the
PATH. A ```json or ```text block right after a ```sh block (nothing but blank lines between) is
its output. What varies from run to run is normalised: the ports of the page's services (8000
to 8099) become free ones, other ports (PostgreSQL's 5432) are left alone; instants and
`recorded_at` match any instant. In a shown JSON answer, `"...": "..."` stands for keys left out
and a last list item `"..."` for items left out. Every HTTP status `curl` gets is recorded: none
may be a 5xx or a failed connection, and a 4xx only where the page shows the error.

A command that runs until stopped (`subledger serve`, `project`, `sandbox`, `sync run`) must end
with `&`: it then logs to a file of the session's, the session waits until its port takes
connections, and it is stopped with the session.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tests.e2e.test_server import free_port

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Block:
    """A ```sh block of a page, and the output shown right after it (if any)."""

    page: str
    line: int
    command: str
    shown: str | None = None
    shown_as: str = ""

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def shell_blocks(path: Path, section: str | None = None) -> list[Block]:
    """The page's ```sh blocks (or those of one `## section`) with their shown output."""
    text = path.read_text()
    start, end = 0, len(text)
    if section is not None:
        start = text.index(f"\n## {section}\n")
        following = text.find("\n## ", start + 1)
        end = following if following != -1 else len(text)
    fences = list(FENCE.finditer(text, start, end))
    blocks = []
    for index, fence in enumerate(fences):
        if fence.group(1) != "sh":
            continue
        shown, shown_as = None, ""
        after = fences[index + 1] if index + 1 < len(fences) else None
        if (
            after is not None
            and after.group(1) in ("json", "text", "")
            and not text[fence.end() : after.start()].strip()
        ):
            shown, shown_as = after.group(2), after.group(1) or "text"
        line = text.count("\n", 0, fence.start()) + 2
        blocks.append(Block(path.name, line, fence.group(2), shown, shown_as))
    return blocks


# ---------------------------------------------------------------------------------------------
# The shell


@dataclass
class Ran:
    stdout: str
    stderr: str
    statuses: list[tuple[int, str]] = field(default_factory=list)


CURL_STATUS = re.compile(r"^@@curl (\d{3}) (.*)$")
BACKGROUND = re.compile(r"^(?P<command>.*?[^&\s])\s*&(?P<comment>\s+#.*)?$")
LONG_RUNNING = re.compile(r"\bsubledger (serve|project|sandbox \w+|sync run(?!.*--once))\b")


class Shell:
    """One bash session in `directory`: each block is sourced into it, its output read up to a
    marker. `set -e` is on, so a failing command ends the session and fails the test with what
    it printed. Background jobs write to a log of their own and are killed, with the session's
    whole process group, on `close()`."""

    def __init__(
        self,
        directory: Path,
        env: dict[str, str] | None = None,
        ports: dict[int, int] | None = None,
        replace: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.ports = dict(ports or {})
        self.replace = dict(replace or {})
        self.scratch = Path(tempfile.mkdtemp(prefix="docs-shell-"))
        (self.scratch / ".curlrc").write_text(
            'write-out = "%{stderr}@@curl %{http_code} %{method} %{url_effective}\\n"\n'
        )
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SUBLEDGER_")}
        environment |= {
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "CURL_HOME": str(self.scratch),
            "COLUMNS": "100",
            "TZ": "UTC",
        }
        environment |= env or {}
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=directory,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.out: queue.Queue[str | None] = queue.Queue()
        self.err: queue.Queue[str | None] = queue.Queue()
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=_pump, args=(stream, lines), daemon=True).start()
        self.count = 0
        self._send("set -e\n")

    def _send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def port(self, documented: int) -> int:
        if documented not in self.ports:
            self.ports[documented] = free_port()
        return self.ports[documented]

    def _free(self, found: re.Match[str]) -> str:
        """A port of the page's services (8000 to 8099) as a free one of this run."""
        return f"{found.group(1)}{self.port(int(found.group(2)))}"

    def rewrite(self, command: str) -> str:
        """The block as it runs here: on this run's ports and PATH, each server it starts in the
        background logging to a file of its own and waited for until it takes connections."""
        for documented, actual in self.replace.items():
            command = command.replace(documented, actual)
        command = re.sub(r"(\.\./)*\.venv/bin/", "", command)
        command = re.sub(r"subledger serve(?![^\n]*--port)", "subledger serve --port 8000", command)
        lines = []
        for line in command.split("\n"):
            background = BACKGROUND.match(line)
            long_running = LONG_RUNNING.search(line)
            if long_running and background is None:
                raise AssertionError(f"a long-running command must end with '&': {line}")
            line = re.sub(r"(127\.0\.0\.1:|--port )(80\d\d)\b", self._free, line)
            if background is None:
                lines.append(line)
                continue
            command_only = re.sub(r"&(\s+#.*)?$", "", line).rstrip()
            lines.append(f"{command_only} >>{self.scratch / 'background.log'} 2>&1 &")
            port = re.search(r"--port (\d+)", command_only)
            if long_running and port:
                lines.append(
                    "for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/"
                    f"{port.group(1)}) 2>/dev/null && break; sleep 0.1; done"
                )
        return "\n".join(lines)

    def run(self, block: Block, timeout: float = 180) -> Ran:
        self.count += 1
        script = self.rewrite(block.command)
        path = self.scratch / f"block-{self.count}.sh"
        path.write_text(script + "\n")
        marker = f"@@end-{self.count}"
        self._send(f"source {path} </dev/null\necho {marker}\necho {marker} >&2\n")
        deadline = time.monotonic() + timeout
        stdout = self._read(self.out, marker, deadline, block)
        stderr = self._read(self.err, marker, deadline, block)
        statuses = []
        kept = []
        for line in stderr.splitlines():
            found = CURL_STATUS.match(line)
            if found:
                statuses.append((int(found.group(1)), found.group(2)))
            else:
                kept.append(line)
        return Ran(stdout, "\n".join(kept), statuses)

    def _read(
        self, lines: queue.Queue[str | None], marker: str, deadline: float, block: Block
    ) -> str:
        got: list[str] = []
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"{block.where}: still running after its time") from None
            if line is None:
                self.process.wait(10)
                raise AssertionError(
                    f"{block.where}: the command failed (exit {self.process.returncode}):\n"
                    f"{''.join(got)}{self._rest(self.err)}\n{self.background_log()}"
                )
            if line.rstrip("\n").endswith(marker):  # output without a last newline ends there
                got.append(line.rstrip("\n").removesuffix(marker))
                return "".join(got)
            got.append(line)

    @staticmethod
    def _rest(lines: queue.Queue[str | None]) -> str:
        rest = []
        with contextlib.suppress(queue.Empty):
            while (line := lines.get(timeout=1)) is not None:
                rest.append(line)
        return "".join(rest)

    def background_log(self) -> str:
        log = self.scratch / "background.log"
        return log.read_text()[-4000:] if log.exists() else ""

    def close(self) -> None:
        """Stop the background jobs (bash reaps them), then bash; whatever is left of the
        session's process group (the shell failed and left its jobs behind) is killed."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self._send("set +e; kill $(jobs -p) 2>/dev/null; wait; exit\n")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(30)
        for signal_number in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal_number)
                time.sleep(1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        shutil.rmtree(self.scratch, ignore_errors=True)


def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@contextlib.contextmanager
def shell(directory: Path, **options: Any) -> Iterator[Shell]:
    session = Shell(directory, **options)
    try:
        yield session
    finally:
        session.close()


# ---------------------------------------------------------------------------------------------
# Comparing what ran with what the page shows


INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
#: The process folding a projection, as `subledger projections status` names it.
FOLDER = re.compile(r"pid \d+ on \S+")


def shaped(actual: Any, shown: Any) -> Any:
    """`actual` cut to what `shown` shows: keys and items it leaves out with "...", and each
    `recorded_at` (an instant of this run) as the page writes it."""
    if isinstance(shown, dict) and isinstance(actual, dict):
        if "..." in shown:
            result = {k: shaped(actual.get(k), v) for k, v in shown.items() if k != "..."}
            result["..."] = "..."
        else:
            result = {k: shaped(v, shown.get(k)) for k, v in actual.items()}
        if "recorded_at" in result and INSTANT.fullmatch(str(actual.get("recorded_at"))):
            result["recorded_at"] = shown.get("recorded_at")
        return result
    if isinstance(shown, list) and isinstance(actual, list):
        if shown and shown[-1] == "...":
            head = [shaped(a, s) for a, s in zip(actual, shown[:-1], strict=False)]
            return [*head, "..."] if len(actual) >= len(shown) - 1 else head
        return [shaped(a, shown[i] if i < len(shown) else None) for i, a in enumerate(actual)]
    return actual


def plain(text: str, ports: dict[int, int]) -> str:
    for documented, actual in ports.items():
        text = text.replace(f"127.0.0.1:{actual}", f"127.0.0.1:{documented}")
    text = FOLDER.sub("<folder>", INSTANT.sub("<instant>", text.replace("\r", "")))
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))


def assert_shows(block: Block, ran: Ran, ports: dict[int, int]) -> None:
    for status, request in ran.statuses:
        assert 100 <= status < 500, f"{block.where}: {request} answered {status}\n{ran.stderr}"
        if status >= 400:
            assert block.shown is not None and '"error"' in block.shown, (
                f"{block.where}: {request} answered {status}, which the page does not show:\n"
                f"{ran.stdout}"
            )
    if block.shown is None:
        return
    if block.shown_as == "json":
        try:
            actual = orjson.loads(ran.stdout)
        except orjson.JSONDecodeError:
            raise AssertionError(f"{block.where}: not JSON:\n{ran.stdout}\n{ran.stderr}") from None
        shown = orjson.loads(block.shown)
        assert shaped(actual, shown) == shown, f"{block.where}: {ran.stdout}"
    else:
        assert plain(ran.stdout, ports) == plain(block.shown, {}), f"{block.where}:\n{ran.stdout}"


def run_blocks(session: Shell, blocks: list[Block]) -> None:
    for block in blocks:
        assert_shows(block, session.run(block), session.ports)
