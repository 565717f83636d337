"""`subledger sandbox ...`: run a local stand-in for an accounting system's API.

The accounting systems we post to have no sandbox, so the dispatcher is developed and tested
against these (see docs/sandboxes.md). The fault options start the sandbox misbehaving at
once; `PUT /_sandbox/faults` changes them while it runs.
"""

from __future__ import annotations

import click
import uvicorn

from adapters.sandbox.billy import BillySandboxSettings, create_billy_app
from adapters.sandbox.faults import FaultSettings

RATE = click.FloatRange(0.0, 1.0)


@click.group()
def sandbox() -> None:
    """Local stand-ins for the accounting systems' APIs (in memory, with fault injection)."""


@sandbox.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8081, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--token", default="sandbox-token", show_default=True, help="The X-Access-Token to accept."
)
@click.option("--fail-rate", type=RATE, default=0.0, help="Share of /v2 requests answered 500.")
@click.option("--throttle-rate", type=RATE, default=0.0, help="Share of /v2 requests answered 429.")
@click.option(
    "--rate-limit",
    type=click.IntRange(min=0),
    default=0,
    help="/v2 requests admitted per sliding minute (0: no limit).",
)
@click.option(
    "--drop-rate",
    type=RATE,
    default=0.0,
    help="Share of writes whose connection breaks after the work was committed.",
)
@click.option(
    "--latency-ms", type=click.IntRange(0, 600_000), default=0, help="Delay on every answer."
)
@click.option(
    "--slow-rate",
    type=RATE,
    default=0.0,
    help="Share of answers held back --slow-ms after the work was done.",
)
@click.option("--slow-ms", type=click.IntRange(0, 600_000), default=5000, show_default=True)
@click.option("--seed", type=int, default=None, help="Seed of the fault draws (repeatable runs).")
def billy(
    host: str,
    port: int,
    token: str,
    fail_rate: float,
    throttle_rate: float,
    rate_limit: int,
    drop_rate: float,
    latency_ms: int,
    slow_rate: float,
    slow_ms: int,
    seed: int | None,
) -> None:
    """Serve a Billy API v2 sandbox (in memory; it forgets everything when stopped)."""
    faults = FaultSettings(
        fail_rate=fail_rate,
        throttle_rate=throttle_rate,
        rate_limit=rate_limit,
        drop_rate=drop_rate,
        latency_ms=latency_ms,
        slow_rate=slow_rate,
        slow_ms=slow_ms,
        seed=seed,
    )
    app = create_billy_app(BillySandboxSettings(token=token, faults=faults))
    click.echo(f"Billy sandbox listening on http://{host}:{port}/v2 (X-Access-Token: {token})")
    uvicorn.run(app, host=host, port=port, log_level="warning")
