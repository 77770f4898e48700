"""The brake on a client failing the API's token check, kept in Redis so every `serve` process agrees.

More than `failures_per_window` failed attempts from one client address within `window_s`: the client
is held for `cooloff_s` (429 on every guarded route, whatever token it sends). One Lua call per request
(worker/lua/auth_brake.lua): a good token asks "is this client held?", a failure records itself and
may start the hold. Both read the caller's clock, so tests move time instead of waiting; the keys'
TTLs (the window, the cool-off) only bound memory. Counters for /metrics: keys.AUTH_COUNTERS.
"""

from __future__ import annotations

import math
from importlib import resources

import redis.asyncio as aioredis

from graphworks_core import keys
from graphworks_core.clock import Clock

WINDOW_S = 60.0
COOLOFF_S = 60.0


class FailureBrake:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        failures_per_window: int,
        clock: Clock,
        window_s: float = WINDOW_S,
        cooloff_s: float = COOLOFF_S,
    ) -> None:
        if failures_per_window < 1 or window_s <= 0 or cooloff_s <= 0:
            raise ValueError("the brake needs at least one failure allowed, and a window and cool-off above 0 s")
        self.failures_per_window = failures_per_window
        self.clock = clock
        self.window_s = window_s
        self.cooloff_s = cooloff_s
        self._call = redis.register_script(resources.files("worker").joinpath("lua", "auth_brake.lua").read_text())

    async def retry_after_s(self, client: str) -> int | None:
        """For a request with a good token: seconds until `client` may try again, or None if it is not held."""
        return await self._run(client, "check")

    async def failed(self, client: str) -> int | None:
        """Record a missing or wrong token from `client`: seconds it is held for (this attempt included), or None."""
        return await self._run(client, "fail")

    async def _run(self, client: str, what: str) -> int | None:
        held = await self._call(
            keys=[keys.auth_hold(client), keys.auth_failures(client), keys.AUTH_COUNTERS],
            args=[repr(self.clock.now()), what, self.failures_per_window, repr(self.window_s), repr(self.cooloff_s)],
        )
        text = held.decode() if isinstance(held, bytes) else str(held)
        return max(1, math.ceil(float(text))) if text else None
