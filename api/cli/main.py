"""The `subledger` command line: the root group, with each command family's commands added.

The commands live in a module per family (`serve`, `projections`, `migrate`, `export`, `sync`,
`keys`, `seal`, `sandbox`, `demo`), which share `common`; none of them imports this module.
"""

from __future__ import annotations

import sys

import click

from subledger.api.cli.common import refused
from subledger.api.cli.demo import demo
from subledger.api.cli.export import export
from subledger.api.cli.keys import keys
from subledger.api.cli.migrate import migrate
from subledger.api.cli.projections import project, projections
from subledger.api.cli.sandbox import sandbox
from subledger.api.cli.seal import seal
from subledger.api.cli.serve import serve, version
from subledger.api.cli.sync import sync
from subledger.api.logs import LogFormatError, configure_logging, log_format


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """subledger: an event-sourced revenue ledger for subscription businesses."""
    with refused(LogFormatError):
        if log_format() == "json":  # every command's warnings as JSON lines, not just serve's
            configure_logging("warning")


for command in (
    version,
    serve,
    project,
    projections,
    migrate,
    export,
    sync,
    sandbox,
    demo,
    keys,
    seal,
):
    main.add_command(command)

if __name__ == "__main__":
    sys.exit(main())
