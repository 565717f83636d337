"""How one Dinero sandbox runs: its credentials, its organization, its faults and brownouts."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from subledger.adapters.sandbox.faults import FaultSettings

#: Dinero's documented limit: requests a minute per organization (and client id).
RATE_LIMIT: Final = 100
#: How long a token lives, in seconds ("≈1 h").
TOKEN_SECONDS: Final = 3600


class BrownoutSettings(BaseModel):
    """Dinero answers 480 "Brownout" at random while it retires an endpoint; this does so on
    purpose, for every API request, so a client can be tested against it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: float = Field(default=0.0, ge=0.0, le=1.0, description="Share of requests answered 480.")
    seed: int | None = Field(default=None, description="Seed of the draws, for repeatable runs.")


class DineroSandboxSettings(BaseModel):
    """How one Dinero sandbox runs: the credentials its token endpoint accepts, the one
    organization it holds and the faults it injects (Dinero's rate limit is on by default)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(default="sandbox-client", min_length=1)
    client_secret: str = Field(default="sandbox-secret", min_length=1)
    api_key: str = Field(default="sandbox-api-key", min_length=1)
    organization_id: int = Field(default=123456, ge=1)
    organization_name: str = Field(default="Sandbox ApS", min_length=1)
    is_pro: bool = True
    token_seconds: int = Field(default=TOKEN_SECONDS, ge=1)
    faults: FaultSettings = Field(default_factory=lambda: FaultSettings(rate_limit=RATE_LIMIT))
    brownout: BrownoutSettings = Field(default_factory=BrownoutSettings)
