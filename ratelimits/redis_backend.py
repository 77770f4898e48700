"""The Redis backend: every worker shares the limits; one Lua call per acquire (one round trip).

The scripts (`ratelimits/lua/`) run the steps of `ratelimits/algorithm.py` on Redis keys named
in `worker/keys.py`. Time comes from the caller's clock (the one seam), so worker hosts share
a clock through NTP, as arq's own scheduling already assumes; key TTLs only collect garbage.
"""

from __future__ import annotations

from importlib import resources

import redis.asyncio as aioredis

from graphworks_core import keys
from ratelimits.algorithm import LEASE_POLL_S, MAX_ROUNDS, RATE_BUCKET_S, Decision, Kind
from ratelimits.backend import COUNTERS, KeyStats, rate_from
from ratelimits.plan import Plan

STATS_TTL_S = 7 * 86_400


def _script(name: str) -> str:
    return resources.files("ratelimits").joinpath("lua", name).read_text()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisBackend:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._acquire = redis.register_script(_script("acquire.lua"))
        self._cool = redis.register_script(_script("cool.lua"))

    async def acquire(
        self, plan: Plan, now: float, max_wait_s: float, booked_at: float | None, lease_id: str
    ) -> Decision:
        names = plan.names
        redis_keys = [
            *(keys.limit_state(m.key) for m in plan.meters),
            *(keys.limit_leases(lease.key) for lease in plan.leases),
            *(keys.limit_cooldown(n) for n in names),
            *(keys.limit_stats(n) for n in names),
            keys.LIMIT_INDEX,
        ]
        args: list[str | int | float] = [
            repr(now), repr(max_wait_s), "" if booked_at is None else repr(booked_at), lease_id,
            len(plan.meters), len(plan.leases), len(names), LEASE_POLL_S, STATS_TTL_S, RATE_BUCKET_S, MAX_ROUNDS,
        ]  # fmt: skip
        for m in plan.meters:
            args += [repr(m.step_s), repr(m.merge_gap_s)]
        for lease in plan.leases:
            args += [lease.limit, repr(lease.ttl_s)]
        args += list(names)
        kind, at = await self._acquire(keys=redis_keys, args=args)
        decided: Kind = _text(kind)  # type: ignore[assignment]
        return Decision(decided, float(_text(at)))

    async def release(self, plan: Plan, lease_id: str) -> None:
        if not plan.leases:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for lease in plan.leases:
                pipe.zrem(keys.limit_leases(lease.key), lease_id)
            await pipe.execute()

    async def cool(self, plan: Plan, until: float, now: float) -> None:
        names = plan.names
        await self._cool(
            keys=[*(keys.limit_cooldown(n) for n in names), *(keys.limit_stats(n) for n in names), keys.LIMIT_INDEX],
            args=[repr(now), repr(until), len(names), STATS_TTL_S, *names, *("1" if c else "0" for c in plan.cools)],
        )

    async def snapshot(self, now: float, limit: int = 100) -> list[KeyStats]:
        await self.redis.zremrangebyscore(keys.LIMIT_INDEX, "-inf", now - STATS_TTL_S)
        names = [_text(n) for n in await self.redis.zrevrange(keys.LIMIT_INDEX, 0, limit - 1)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(keys.limit_stats(name))
                pipe.get(keys.limit_cooldown(name))
                pipe.zcount(keys.limit_leases(name), f"({now!r}", "+inf")
            rows = await pipe.execute()
        out = []
        for i, name in enumerate(names):
            raw, cooling, in_flight = rows[3 * i : 3 * i + 3]
            counts = {_text(k): int(float(_text(v))) for k, v in raw.items()}
            until = float(_text(cooling)) if cooling else 0.0
            out.append(
                KeyStats(
                    key=name,
                    rate_per_s=rate_from(
                        counts.get("bucket", -1), counts.get("in_bucket", 0), counts.get("in_previous", 0), now
                    ),
                    cooling_until=until if until > now else None,
                    in_flight=int(in_flight),
                    **{f: counts.get(f, 0) for f in COUNTERS},
                )
            )
        return out
