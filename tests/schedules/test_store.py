"""ScheduleStore on a real Redis, time moved by a FakeClock: ticks, one job per tick, coalescing, pause."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from graphworks_core import keys
from graphworks_core.clock import FakeClock, utc
from graphworks_core.envelope import Envelope
from graphworks_core.settings import Settings
from tests.schedules.conftest import MAIL, T0, make_store
from worker.queue import Scheduled
from worker.schedules import RUNS_KEPT, ScheduleInvalid, ScheduleNotFound, ScheduleSpec, ScheduleStore


def spec(**change: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "report", "every_s": 10, "type": "mail", "payload": MAIL}
    data.update(change)
    return data


async def queued(redis: aioredis.Redis) -> int:
    return int(await redis.zcard(keys.queue()))


async def test_every_ticks_on_multiples_of_the_interval_each_one_job(
    store: ScheduleStore, clock: FakeClock, redis: aioredis.Redis
) -> None:
    clock.set(T0 + 3)
    info = await store.put(spec(priority=8))
    assert (info.next_run_at, info.last_run_at, info.last_job_id, info.runs) == (utc(T0 + 10), None, None, [])
    assert await store.tick() == []

    clock.set(T0 + 10)
    [first] = await store.tick()
    assert await store.tick() == [], "one tick, one job"
    clock.set(T0 + 20.4)
    [second] = await store.tick()

    info = await store.get("report")
    assert [(r.tick, r.job_id) for r in info.runs] == [(utc(T0 + 20), second), (utc(T0 + 10), first)]
    assert (info.last_run_at, info.last_job_id, info.next_run_at) == (utc(T0 + 20), second, utc(T0 + 30))
    record = json.loads(await redis.get(keys.job_status(first)))
    assert (record["type"], record["priority"], record["status"]) == ("mail", 8, "queued")
    assert record["idempotency_key"] == f"schedule:report:{int(T0) + 10}"
    assert await queued(redis) == 2


async def test_sub_second_ticks_have_keys_of_their_own(
    store: ScheduleStore, clock: FakeClock, redis: aioredis.Redis
) -> None:
    await store.put(spec(every_s=0.5))
    clock.set(T0 + 0.5)
    [half] = await store.tick()
    clock.set(T0 + 1.0)
    [whole] = await store.tick()
    keys_of = [json.loads(await redis.get(keys.job_status(i)))["idempotency_key"] for i in (half, whole)]
    assert keys_of == [f"schedule:report:{int(T0)}.500", f"schedule:report:{int(T0) + 1}"]


async def test_cron_is_read_in_the_schedules_time_zone(store: ScheduleStore, clock: FakeClock) -> None:
    clock.set(T0 + 1)
    berlin = await store.put(spec(name="berlin", every_s=None, cron="0 10 * * *", timezone="Europe/Berlin"))
    assert berlin.next_run_at == utc(T0 + 3600), "10:00 in Berlin is 09:00 UTC in January"
    five = await store.put(spec(name="five", every_s=None, cron="*/5 * * * *"))
    assert five.next_run_at == utc(T0 + 300)
    seconds = await store.put(spec(name="seconds", every_s=None, cron="* * * * * */15"))  # a 6th field: seconds
    assert seconds.next_run_at == utc(T0 + 15)

    clock.set(T0 + 300)  # exactly on five's tick (and on one of seconds')
    assert len(await store.tick()) == 2
    assert (await store.get("five")).runs[0].tick == utc(T0 + 300)
    assert (await store.get("five")).next_run_at == utc(T0 + 600)
    clock.set(T0 + 3600.2)  # berlin's tick; five and seconds missed many: one run each
    assert len(await store.tick()) == 3
    runs = {name: [r.tick for r in (await store.get(name)).runs] for name in ("berlin", "five", "seconds")}
    assert runs == {
        "berlin": [utc(T0 + 3600)],
        "five": [utc(T0 + 3600), utc(T0 + 300)],
        "seconds": [utc(T0 + 3600), utc(T0 + 300)],
    }
    assert (await store.get("berlin")).next_run_at == utc(T0 + 3600 + 86_400)


async def test_stores_ticking_together_enqueue_exactly_one_job_per_tick(
    redis_url: str, settings: Settings, clock: FakeClock, redis: aioredis.Redis
) -> None:
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(4)]  # four workers' connections
    try:
        stores = [make_store(c, settings, clock) for c in clients]
        await stores[0].put(spec(every_s=1))
        enqueued: list[str] = []
        for _ in range(30):
            clock.advance(1)
            results = await asyncio.gather(*(s.tick() for s in stores))
            assert sum(len(r) for r in results) == 1, results
            enqueued += [job_id for r in results for job_id in r]
        assert len(set(enqueued)) == 30
        assert await queued(redis) == 30
        info = await stores[3].get("report")
        assert len(info.runs) == RUNS_KEPT
        assert [r.job_id for r in info.runs] == enqueued[::-1][:RUNS_KEPT], "newest first, each tick once"
        assert [r.tick for r in info.runs] == [utc(T0 + 30 - i) for i in range(RUNS_KEPT)]
    finally:
        for c in clients:
            await c.aclose()


async def test_missed_ticks_are_coalesced_into_one_run(
    store: ScheduleStore, clock: FakeClock, redis: aioredis.Redis
) -> None:
    await store.put(spec())  # ticks at T0+10, +20, ...
    clock.set(T0 + 55)  # five ticks passed with no worker ticking
    [job] = await store.tick()
    info = await store.get("report")
    assert [(r.tick, r.job_id) for r in info.runs] == [(utc(T0 + 50), job)], "the latest due tick only"
    assert info.next_run_at == utc(T0 + 60)
    assert await store.tick() == []
    assert await queued(redis) == 1


async def test_paused_enqueues_nothing_and_resume_does_not_catch_up(
    store: ScheduleStore, clock: FakeClock, redis: aioredis.Redis
) -> None:
    await store.put(spec())
    paused = await store.pause("report")
    assert (paused.paused, paused.next_run_at) == (True, None)
    assert (await store.pause("report")).paused, "pausing twice is harmless"
    clock.set(T0 + 50)
    assert await store.tick() == []

    resumed = await store.resume("report")
    assert (resumed.paused, resumed.next_run_at) == (False, utc(T0 + 60)), "from the next tick"
    assert await store.tick() == [], "nothing for the ticks that passed while paused"
    clock.set(T0 + 60)
    [job] = await store.tick()
    assert [(r.tick, r.job_id) for r in (await store.get("report")).runs] == [(utc(T0 + 60), job)]
    assert await queued(redis) == 1


async def test_a_schedule_stored_paused_starts_on_resume(store: ScheduleStore, clock: FakeClock) -> None:
    assert (await store.put(spec(paused=True))).next_run_at is None
    clock.set(T0 + 100)
    assert await store.tick() == []
    assert (await store.resume("report")).next_run_at == utc(T0 + 110)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"every_s": None, "cron": "61 * * * *"}, "cron", "'61 * * * *' is not a valid cron expression: "),
        ({"every_s": None, "cron": "every day"}, "cron", "is not a valid cron expression"),
        ({"every_s": None, "cron": "0 0 30 2 *"}, "cron", "is not a valid cron expression"),  # 30 February
        ({"cron": "* * * * *"}, "every_s", "give exactly one of cron or every_s (got both)"),
        ({"every_s": None}, "every_s", "give exactly one of cron or every_s (got neither)"),
        ({"every_s": 0}, "every_s", "greater than 0"),
        ({"every_s": None, "cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone", "not an IANA time zone"),
        ({"type": "fax"}, "type", "unknown job type 'fax'"),
        ({"payload": {"mailbox": "ops@contoso.com"}}, "payload", "not a valid mail payload: to: Field required"),
        ({"priority": 11}, "priority", "less than or equal to 10"),
        ({"name": "two words"}, "name", "1-64 characters"),
        ({"name": "x" * 65}, "name", "1-64 characters"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
)
async def test_a_bad_schedule_is_refused_naming_the_field_and_nothing_is_stored(
    store: ScheduleStore, redis: aioredis.Redis, change: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ScheduleInvalid) as caught:
        await store.put(spec(**change))
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ") and words in str(caught.value), str(caught.value)
    assert await redis.exists(keys.SCHEDULES, keys.SCHEDULES_DUE) == 0
    with pytest.raises(ScheduleInvalid) as parsed:  # what the HTTP API reports: the same message
        ScheduleSpec.parse(spec(**change))
    assert str(parsed.value) == str(caught.value)


async def test_a_tick_another_worker_enqueued_is_recorded_with_its_job_not_a_second(
    store: ScheduleStore, clock: FakeClock, redis: aioredis.Redis
) -> None:
    await store.put(spec())
    clock.set(T0 + 10)
    # Another worker enqueued this tick, then died before recording it.
    other = Envelope(type="mail", payload=MAIL, idempotency_key=f"schedule:report:{int(T0) + 10}")
    await store.queue.put([Scheduled(other)])
    assert await store.tick() == [], "its job, not ours"
    info = await store.get("report")
    assert [(r.tick, r.job_id) for r in info.runs] == [(utc(T0 + 10), other.id)]
    assert info.next_run_at == utc(T0 + 20)
    assert await queued(redis) == 1


async def test_list_get_replace_and_remove(store: ScheduleStore, clock: FakeClock, redis: aioredis.Redis) -> None:
    await store.put(spec(name="b"))
    await store.put(ScheduleSpec.parse(spec(name="a", every_s=None, cron="0 * * * *")))
    assert [(i.name, i.next_run_at) for i in await store.list()] == [("a", utc(T0 + 3600)), ("b", utc(T0 + 10))]
    clock.set(T0 + 10)
    [job] = await store.tick()

    replaced = await store.put(spec(name="b", every_s=60, priority=2))
    assert (replaced.every_s, replaced.priority, replaced.next_run_at) == (60, 2, utc(T0 + 60))
    assert replaced.last_job_id == job, "a replaced schedule keeps its history"

    await store.remove("b")
    assert [i.name for i in await store.list()] == ["a"]
    assert not await redis.exists(keys.schedule_runs("b"))
    for call in (store.get, store.remove, store.pause, store.resume):
        with pytest.raises(ScheduleNotFound, match="no schedule named 'b'"):
            await call("b")
    clock.set(T0 + 3600)
    assert len(await store.tick()) == 1, "only a"


async def test_a_due_entry_without_its_schedule_is_dropped(store: ScheduleStore, redis: aioredis.Redis) -> None:
    await redis.zadd(keys.SCHEDULES_DUE, {"ghost": T0 - 1})
    assert await store.tick() == []
    assert await redis.zscore(keys.SCHEDULES_DUE, "ghost") is None


async def test_a_tick_with_nothing_due_is_one_redis_command(store: ScheduleStore, redis: aioredis.Redis) -> None:
    await store.put(spec())
    await redis.config_resetstat()
    for _ in range(10):
        assert await store.tick() == []
    stats = await redis.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): s["calls"] for name, s in stats.items()}
    assert calls.pop("zrangebyscore") == 10
    assert set(calls) <= {"config|resetstat", "info"}, calls
