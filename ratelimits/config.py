"""Graph's documented limits as data: the `[limits]` table of the TOML file, with defaults.

Defaults are Microsoft's published numbers (https://learn.microsoft.com/en-us/graph/throttling-limits):
global 130,000 requests / 10 s per app; Outlook per app and mailbox 10,000 requests / 10 min,
4 concurrent, 150 MB upload / 5 min; Teams POST channel message 50 rps and POST chat message
20 rps per app per tenant, 1 rps per chat or channel, GET message 20 rps, other calls 30 rps;
SharePoint/OneDrive 1,200 resource units / min in the smallest tier (one request = 1 RU here).
Each API's `key` names the Redis/in-process key it is counted on: `{tenant}` and `{scope}` are
filled per request.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

MB = 1_000_000


class ApiLimit(BaseModel):
    """The limits of one API, applied per distinct key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(description="key template: {tenant} and {scope} are filled per request")
    rate: float | None = Field(None, gt=0, description="requests per `per_s` window; None: no rate limit")
    per_s: float = Field(1.0, gt=0)
    concurrency: int | None = Field(None, ge=1, description="requests in flight at once; None: unlimited")
    upload_bytes: int | None = Field(None, ge=1, description="bytes uploaded per `upload_per_s`; None: no budget")
    upload_per_s: float = Field(300.0, gt=0)
    cool_on_throttle: bool = Field(True, description="a 429 on a request using this key closes the key")


def _api(key: str, rate: float, per_s: float = 1.0, **more: object) -> ApiLimit:
    return ApiLimit.model_validate({"key": key, "rate": rate, "per_s": per_s, **more})


# Tenant-wide keys do not cool on a 429: a 429 names no scope, and closing the whole tenant for
# one chat's Retry-After would stop every other chat. The narrowest key of the request cools.
DEFAULT_APIS: dict[str, ApiLimit] = {
    "global": _api("global:{tenant}", 130_000, 10, cool_on_throttle=False),
    "outlook": _api("outlook:{tenant}:{scope}", 10_000, 600, concurrency=4, upload_bytes=150 * MB, upload_per_s=300),
    "teams.chat_post": _api("teams.chat_post:{tenant}", 20, cool_on_throttle=False),
    "teams.channel_post": _api("teams.channel_post:{tenant}", 50, cool_on_throttle=False),
    "teams.chat": _api("teams.chat:{scope}", 1),
    "teams.channel": _api("teams.channel:{scope}", 1),
    "teams.get": _api("teams.get:{tenant}", 20),
    "teams.other": _api("teams.other:{tenant}", 30),
    "files": _api("files:{tenant}", 1_200, 60),
}


class ApiOverride(BaseModel):
    """`[limits.apis.<name>]`: any field of ApiLimit; unset fields keep the default."""

    model_config = ConfigDict(extra="forbid")

    key: str | None = None
    rate: float | None = Field(None, gt=0)
    per_s: float | None = Field(None, gt=0)
    concurrency: int | None = Field(None, ge=1)
    upload_bytes: int | None = Field(None, ge=1)
    upload_per_s: float | None = Field(None, gt=0)
    cool_on_throttle: bool | None = None
    off: bool = Field(False, description="drop this API's limits entirely")


class LimitsConfig(BaseModel):
    """The `[limits]` table."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Waits up to this long are slept in the worker; longer ones defer the job to Redis.
    max_wait_s: float = Field(2.0, ge=0)
    # Pace at this fraction of each documented limit: a request's transit to Graph varies by a
    # few ms, so pacing at exactly N/s lets N+1 land in some 1 s window at Graph's end.
    headroom: float = Field(0.97, gt=0, le=1)
    # A lease outlives a worker that died holding it by at most this long.
    lease_ttl_s: float = Field(60.0, gt=0)
    # A 429 without Retry-After closes the scope this long.
    cooldown_default_s: float = Field(5.0, ge=0)
    apis: dict[str, ApiOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _new_apis_are_complete(self) -> LimitsConfig:
        for name, o in self.apis.items():
            if name not in DEFAULT_APIS and not o.off and o.key is None:
                raise ValueError(f"limits.apis.{name}: a new API needs `key` (known: {', '.join(DEFAULT_APIS)})")
        return self

    def resolved(self) -> dict[str, ApiLimit]:
        """The defaults with the file's overrides applied; APIs turned `off` are left out."""
        out = dict(DEFAULT_APIS)
        for name, o in self.apis.items():
            if o.off:
                out.pop(name, None)
                continue
            given = o.model_dump(exclude_none=True, exclude={"off"})
            base = out.get(name)
            out[name] = base.model_copy(update=given) if base else ApiLimit.model_validate(given)
        return out
