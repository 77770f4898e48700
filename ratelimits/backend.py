"""What a limiter backend provides: a few atomic operations over a request's `Plan`.

The algorithm (`ratelimits/algorithm.py`) owns the time math; a backend owns atomicity and
storage: `MemoryBackend` (one process, tests) and `RedisBackend` (every worker, one Lua call
per acquire). Both pass the same tests (`tests/ratelimits`).
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from ratelimits.algorithm import RATE_BUCKET_S, Decision
from ratelimits.plan import Plan

COUNTERS = ("sent", "waited", "wait_ms", "deferred", "blocked", "cooldowns", "throttled")


class KeyStats(BaseModel):
    """One limit key's counters: requests let through, waits (in the worker), deferrals (back to
    Redis), blocked (asked again: key cooling or leases full), cooldowns set, 429s seen."""

    key: str
    rate_per_s: float = 0.0  # requests per second over the last full RATE_BUCKET_S
    sent: int = 0
    waited: int = 0
    wait_ms: int = 0
    deferred: int = 0
    blocked: int = 0
    cooldowns: int = 0
    throttled: int = 0
    cooling_until: float | None = None
    in_flight: int = 0


def rate_from(bucket: int, in_bucket: int, in_previous: int, now: float) -> float:
    current = int(now // RATE_BUCKET_S)
    if bucket == current:
        return in_previous / RATE_BUCKET_S
    if bucket == current - 1:
        return in_bucket / RATE_BUCKET_S
    return 0.0


class Backend(Protocol):
    async def acquire(
        self, plan: Plan, now: float, max_wait_s: float, booked_at: float | None, lease_id: str
    ) -> Decision: ...

    async def release(self, plan: Plan, lease_id: str) -> None: ...

    async def cool(self, plan: Plan, until: float, now: float) -> None: ...

    async def snapshot(self, now: float, limit: int = 100) -> list[KeyStats]:
        """The most recently used keys first."""
        ...
