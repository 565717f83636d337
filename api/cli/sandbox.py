"""`subledger sandbox ...`: run a local stand-in for an accounting system's API.

The accounting systems we post to have no sandbox, so the dispatcher is developed and tested
against these (see docs/sandboxes.md). The fault options start the sandbox misbehaving at
once; `PUT /_sandbox/faults` changes them while it runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

import click
import uvicorn

from subledger.adapters.sandbox.billy import BillySandboxSettings, create_billy_app
from subledger.adapters.sandbox.dinero import (
    OAUTH_PATH,
    RATE_LIMIT,
    BrownoutSettings,
    DineroSandboxSettings,
    create_dinero_app,
)
from subledger.adapters.sandbox.faults import FaultSettings

RATE = click.FloatRange(0.0, 1.0)
#: The options `fault_options` adds, which become the command's one `faults` argument.
FAULT_OPTIONS: Final = tuple(FaultSettings.model_fields)

Command = Callable[..., None]


def fault_options(scope: str, rate_limit: int = 0) -> Callable[[Command], Command]:
    """The fault options every sandbox command takes, gathered into one `faults:
    FaultSettings` argument. `scope` names the requests they act on in the help; `rate_limit`
    is the default of `--rate-limit` (0: no limit)."""
    options = (
        click.option(
            "--fail-rate", type=RATE, default=0.0, help=f"Share of {scope} requests answered 500."
        ),
        click.option(
            "--throttle-rate",
            type=RATE,
            default=0.0,
            help=f"Share of {scope} requests answered 429.",
        ),
        click.option(
            "--rate-limit",
            type=click.IntRange(min=0),
            default=rate_limit,
            show_default=bool(rate_limit),
            help=f"{scope} requests admitted per sliding minute (0: no limit).",
        ),
        click.option(
            "--drop-rate",
            type=RATE,
            default=0.0,
            help="Share of writes whose connection breaks after the work was committed.",
        ),
        click.option(
            "--latency-ms",
            type=click.IntRange(0, 600_000),
            default=0,
            help="Delay on every answer.",
        ),
        click.option(
            "--slow-rate",
            type=RATE,
            default=0.0,
            help="Share of answers held back --slow-ms after the work was done.",
        ),
        click.option("--slow-ms", type=click.IntRange(0, 600_000), default=5000, show_default=True),
        click.option(
            "--seed", type=int, default=None, help="Seed of the fault draws (repeatable runs)."
        ),
    )

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def with_faults(**arguments: Any) -> None:
            chosen = {name: arguments.pop(name) for name in FAULT_OPTIONS}
            command(faults=FaultSettings(**chosen), **arguments)

        decorated: Command = with_faults
        for option in reversed(options):
            decorated = option(decorated)
        return decorated

    return decorate


def _serve(app: Any, host: str, port: int) -> None:
    uvicorn.run(app, host=host, port=port, log_level="warning")


@click.group()
def sandbox() -> None:
    """Local stand-ins for the accounting systems' APIs (in memory, with fault injection)."""


@sandbox.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8081, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--token", default="sandbox-token", show_default=True, help="The X-Access-Token to accept."
)
@fault_options("/v2")
def billy(host: str, port: int, token: str, faults: FaultSettings) -> None:
    """Serve a Billy API v2 sandbox (in memory; it forgets everything when stopped)."""
    app = create_billy_app(BillySandboxSettings(token=token, faults=faults))
    click.echo(f"Billy sandbox listening on http://{host}:{port}/v2 (X-Access-Token: {token})")
    _serve(app, host, port)


@sandbox.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8082, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--client-id", default="sandbox-client", show_default=True, help="The OAuth client id."
)
@click.option(
    "--client-secret", default="sandbox-secret", show_default=True, help="The client's secret."
)
@click.option(
    "--api-key",
    default="sandbox-api-key",
    show_default=True,
    help="The API key the token endpoint takes as username and password.",
)
@click.option(
    "--organization-id",
    default=123456,
    show_default=True,
    type=click.IntRange(min=1),
    help="The organization's id (the path's /v1/{organizationId}).",
)
@click.option(
    "--token-seconds",
    default=3600,
    show_default=True,
    type=click.IntRange(min=1),
    help="How long a token lives.",
)
@click.option(
    "--pro/--no-pro",
    default=True,
    show_default=True,
    help="Without Dinero Pro every API call is 403 with code 90.",
)
@click.option(
    "--brownout-rate", type=RATE, default=0.0, help="Share of API requests answered 480 Brownout."
)
@fault_options("API", rate_limit=RATE_LIMIT)
def dinero(
    host: str,
    port: int,
    client_id: str,
    client_secret: str,
    api_key: str,
    organization_id: int,
    token_seconds: int,
    pro: bool,
    brownout_rate: float,
    faults: FaultSettings,
) -> None:
    """Serve a Dinero API sandbox (in memory; it forgets everything when stopped).

    Dinero's limit of 100 requests a minute is on by default: --rate-limit 0 turns it off."""
    settings = DineroSandboxSettings(
        client_id=client_id,
        client_secret=client_secret,
        api_key=api_key,
        organization_id=organization_id,
        token_seconds=token_seconds,
        is_pro=pro,
        faults=faults,
        brownout=BrownoutSettings(rate=brownout_rate, seed=faults.seed),
    )
    app = create_dinero_app(settings)
    base = f"http://{host}:{port}"
    limit = f"{faults.rate_limit} requests a minute" if faults.rate_limit else "off"
    click.echo(
        f"Dinero sandbox listening on {base}/v1/{organization_id} (organization {organization_id})"
    )
    click.echo(
        f"Token: POST {base}{OAUTH_PATH} with Basic {client_id}:{client_secret}, "
        f"grant_type=password, username=password={api_key} (tokens last {token_seconds} s)"
    )
    click.echo(f"Rate limit: {limit}")
    _serve(app, host, port)
