"""The limits section of `graphworks stats`: per key, rate, waits, deferrals, cooldowns and 429s."""

from __future__ import annotations

import redis.asyncio as aioredis

from ratelimits.backend import KeyStats
from ratelimits.redis_backend import RedisBackend


async def limit_stats(redis: aioredis.Redis, now: float, limit: int = 50) -> list[KeyStats]:
    """The most recently used limit keys, from the shared Redis counters."""
    return await RedisBackend(redis).snapshot(now, limit)


def limit_lines(rows: list[KeyStats], now: float) -> list[str]:
    if not rows:
        return []
    lines = ["limits (per key; rate over the last full 10 s):"]
    for s in rows:
        cooling = f"  cooling {s.cooling_until - now:.1f}s" if s.cooling_until else ""
        lines.append(
            f"  {s.key:<40} {s.rate_per_s:7.1f}/s  sent {s.sent}  waited {s.waited} ({s.wait_ms / 1000:.1f}s)"
            f"  deferred {s.deferred}  blocked {s.blocked}  429s {s.throttled}  cooldowns {s.cooldowns}"
            f"  in flight {s.in_flight}{cooling}"
        )
    return lines
