"""The brake on failed token attempts (worker/auth_brake.py and its Lua) against the session's real Redis,
with an injected clock: the sliding window, the hold and its end, one client apart from another, two
brakes (two `serve` processes) on one Redis agreeing, the counters, bounded keys, one command a call."""

from __future__ import annotations

import redis.asyncio as aioredis

from graphworks_core import keys
from graphworks_core.clock import FakeClock
from worker.auth_brake import FailureBrake

T0 = 1_800_000_000.0
LIMIT = 20


def brake(redis: aioredis.Redis, clock: FakeClock, limit: int = LIMIT) -> FailureBrake:
    return FailureBrake(redis, failures_per_window=limit, clock=clock)


async def counters(redis: aioredis.Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in (await redis.hgetall(keys.AUTH_COUNTERS)).items()}


async def test_more_than_the_limit_within_a_minute_holds_the_client_for_the_cooloff(redis: aioredis.Redis) -> None:
    clock = FakeClock(T0)
    b = brake(redis, clock)
    for _ in range(LIMIT):
        assert await b.failed("10.0.0.1") is None
        clock.advance(1)
    assert await b.retry_after_s("10.0.0.1") is None  # 20 within the minute: not yet
    assert await b.failed("10.0.0.1") == 60  # the 21st
    clock.advance(30)
    assert await b.retry_after_s("10.0.0.1") == 30  # a good token too
    assert await b.failed("10.0.0.1") == 30  # a failure while held neither counts nor extends the hold
    clock.advance(29.5)
    assert await b.retry_after_s("10.0.0.1") == 1  # never 0: Retry-After rounds up
    clock.advance(0.5)
    assert await b.retry_after_s("10.0.0.1") is None
    # The cool-off served, the count starts afresh: another 20 before the next hold.
    for _ in range(LIMIT):
        assert await b.failed("10.0.0.1") is None
    assert await b.failed("10.0.0.1") == 60


async def test_the_window_slides(redis: aioredis.Redis) -> None:
    clock = FakeClock(T0)
    b = brake(redis, clock)
    for _ in range(10):
        assert await b.failed("a") is None
    clock.advance(30)
    for _ in range(10):
        assert await b.failed("a") is None
    clock.advance(30)  # the first ten are exactly a minute old: out of the window
    assert await b.failed("a") is None
    clock.advance(29)  # within (T0+29, T0+89]: the ten from T0+30 and the one from T0+60
    for _ in range(LIMIT - 11):
        assert await b.failed("a") is None
    assert await b.failed("a") == 60  # the 21st within it


async def test_one_client_held_leaves_the_others_alone(redis: aioredis.Redis) -> None:
    clock = FakeClock(T0)
    b = brake(redis, clock, limit=2)
    for _ in range(2):
        assert await b.failed("10.0.0.1") is None
    assert await b.failed("10.0.0.1") == 60
    assert await b.retry_after_s("10.0.0.2") is None
    assert await b.retry_after_s("::1") is None
    assert await b.failed("10.0.0.2") is None


async def test_two_brakes_on_one_redis_agree(redis: aioredis.Redis, redis_url: str) -> None:
    clock = FakeClock(T0)
    other = aioredis.Redis.from_url(redis_url)  # another process's connection
    try:
        a, b = brake(redis, clock), brake(other, clock)
        for i in range(LIMIT):
            assert await (a if i % 2 else b).failed("c") is None
        assert await a.failed("c") == 60
        assert await b.retry_after_s("c") == 60
        assert await b.failed("c") == 60
    finally:
        await other.aclose()


async def test_the_counters_count_failures_and_refusals(redis: aioredis.Redis) -> None:
    clock = FakeClock(T0)
    b = brake(redis, clock, limit=3)
    await b.retry_after_s("x")  # a good token, not held: counts nothing
    assert await counters(redis) == {}
    for _ in range(4):
        await b.failed("x")  # three failures, then the fourth: a failure refused 429
    assert await counters(redis) == {"failures": 4, "blocked": 1}
    await b.retry_after_s("x")
    await b.failed("x")
    assert await counters(redis) == {"failures": 4, "blocked": 3}


async def test_keys_stay_bounded_and_expire(redis: aioredis.Redis) -> None:
    clock = FakeClock(T0)
    b = brake(redis, clock, limit=5)
    for _ in range(200):  # one failure every 13 s: never 6 in a minute, never held
        assert await b.failed("slow") is None
        clock.advance(13)
    fails = keys.auth_failures("slow")
    assert await redis.llen(fails) <= 6
    assert 0 < await redis.pttl(fails) <= 60_000
    for _ in range(6):
        await b.failed("fast")
    assert not await redis.exists(keys.auth_failures("fast"))  # the hold replaced the count
    assert 0 < await redis.pttl(keys.auth_hold("fast")) <= 60_000
    await b.retry_after_s("never-failed")
    assert not await redis.exists(keys.auth_hold("never-failed"), keys.auth_failures("never-failed"))


async def test_each_call_is_one_redis_command(redis: aioredis.Redis) -> None:
    clock = FakeClock(T0)
    b = brake(redis, clock)
    await b.failed("warm")  # loads the script (a NOSCRIPT miss costs one EVAL, once per Redis)
    await redis.config_resetstat()
    await b.retry_after_s("good")
    await b.failed("bad")
    stats = await redis.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): s["calls"] for name, s in stats.items() if "config" not in name}
    # Two round trips (EVALSHA); inside them (Redis counts a script's commands too) the good token's
    # GET of the hold, and the failure's GET, count, push, trim, look and expiry.
    assert calls == {"evalsha": 2, "get": 2, "hincrby": 1, "lpush": 1, "ltrim": 1, "lindex": 1, "pexpire": 1}, calls
