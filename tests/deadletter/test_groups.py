"""Groups by cause kept current as entries come and go, cursor listings, and the one-off rebuild,
on every backend (and the rebuild on Redis, for a store written before the groups existed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import redis.asyncio as aioredis

from graphworks_core import keys
from graphworks_core.errors import ErrorClass
from worker.deadletter.models import DeadLetterEntry, DeadLetterFilter, GroupKey
from worker.deadletter.redis_store import RedisDeadLetterStore
from worker.deadletter.store import DeadLetterStore

MakeEntry = Callable[..., DeadLetterEntry]


async def counted(store: DeadLetterStore) -> dict[tuple[str, str, str | None, int | None], int]:
    return {(g.type, g.error_class.value, g.graph_code, g.status): g.count for g in await store.groups()}


async def truth(store: DeadLetterStore) -> dict[tuple[str, str, str | None, int | None], int]:
    c = Counter([(e.type, e.error_class.value, e.graph_code, e.status) async for e in store.scan()])
    return dict(c)


def mix(make_entry: MakeEntry, n: int) -> list[DeadLetterEntry]:
    causes = [
        ("mail", ErrorClass.THROTTLED, "TooManyRequests", 429),
        ("mail", ErrorClass.VALIDATION, None, 400),
        ("teams_message", ErrorClass.AUTH, "Forbidden", 403),
        ("sync", ErrorClass.NETWORK, None, None),
    ]
    return [
        make_entry(f"e{i:04d}", minutes=i // 3, type=t, error_class=c, graph_code=g, status=s)  # ties by 3
        for i in range(n)
        for t, c, g, s in [causes[(i * 7) % len(causes)] if i % 5 else causes[0]]
    ]


async def test_groups_follow_puts_overwrites_reviews_removes_and_purges(
    store: DeadLetterStore, make_entry: MakeEntry, t0: datetime
) -> None:
    entries = mix(make_entry, 60)
    await store.put_many(entries)
    assert await counted(store) == await truth(store)
    groups = await store.groups()
    assert [g.count for g in groups] == sorted((g.count for g in groups), reverse=True)
    top = groups[0]
    key = GroupKey(type=top.type, error_class=top.error_class, graph_code=top.graph_code, status=top.status)
    mine = [e for e in entries if GroupKey.of(e) == key]
    newest = max(mine, key=lambda e: (e.last_failure_at, e.id))
    assert (top.first_at, top.last_at) == (min(e.last_failure_at for e in mine), newest.last_failure_at)
    assert top.sample_id == newest.id

    # An overwrite that moves an entry to another group moves its count.
    await store.put(make_entry("e0001", minutes=100, type="upload", error_class=ErrorClass.TIMEOUT))
    await store.review("e0002", "seen")
    assert await store.remove("e0003") is not None
    assert await store.remove_many(["e0004", "e0005", "nope"]) == 2
    assert await counted(store) == await truth(store)
    assert await store.purge(DeadLetterFilter(type="mail", error_class=ErrorClass.THROTTLED)) > 0
    assert await counted(store) == await truth(store)
    assert ("mail", "throttled", "TooManyRequests", 429) not in await counted(store)
    await store.purge()
    assert await store.groups() == []


async def test_cursor_pages_cover_every_match_once_in_order_ties_included(
    store: DeadLetterStore, make_entry: MakeEntry, t0: datetime
) -> None:
    await store.put_many(mix(make_entry, 90))
    await store.review("e0010", None)
    await store.review("e0011", None)
    for flt in [
        None,
        DeadLetterFilter(type="mail"),
        DeadLetterFilter(error_class=ErrorClass.AUTH, graph_code="Forbidden"),
        DeadLetterFilter(status=400, since=t0 + timedelta(minutes=5), until=t0 + timedelta(minutes=20)),
        DeadLetterFilter(reviewed=False),
        DeadLetterFilter(reviewed=True, type="mail"),
        DeadLetterFilter(type="nope"),
    ]:
        expected = [e.id async for e in store.scan(flt)]
        assert expected == [e.id for e in await _all_pages(store, flt, 7)], flt
        assert await store.count_matching(flt) == len(expected), flt


async def _all_pages(store: DeadLetterStore, flt: DeadLetterFilter | None, limit: int) -> list[DeadLetterEntry]:
    got: list[DeadLetterEntry] = []
    cursor = None
    for _ in range(1000):
        page = await store.cursor_page(flt, limit=limit, cursor=cursor)
        assert len(page.entries) <= limit
        got += page.entries
        cursor = page.next_cursor
        if cursor is None:
            return got
    raise AssertionError("the pages never ended")


async def test_a_listing_with_a_skipping_filter_is_bounded_per_request(
    redis: aioredis.Redis, make_entry: MakeEntry
) -> None:
    store = RedisDeadLetterStore(redis)
    await store.put_many([make_entry(f"r{i:04d}", minutes=i, reviewed=True) for i in range(300)])
    await store.put(make_entry("old-unreviewed", minutes=-1, type="teams_message"))
    page = await store.cursor_page(DeadLetterFilter(reviewed=False, type="mail.send"), limit=5, budget=100)
    assert page.entries == [] and page.next_cursor is not None  # stopped after 100, says where
    everything = await _all_pages(store, DeadLetterFilter(reviewed=False), 5)
    assert [e.id for e in everything] == ["old-unreviewed"]


async def test_a_store_written_before_the_groups_is_rebuilt_once(redis: aioredis.Redis, make_entry: MakeEntry) -> None:
    entries = mix(make_entry, 450)
    async with redis.pipeline(transaction=False) as pipe:  # what the store wrote before groups existed
        for e in entries:
            pipe.hset(keys.DLQ_ENTRIES, e.id, e.model_dump_json())
            pipe.zadd(keys.DLQ_INDEX, {e.id: e.last_failure_at.timestamp()})
        await pipe.execute()
    store = RedisDeadLetterStore(redis)
    await store.put(make_entry("new-one", minutes=999))  # the worker went on meanwhile
    await store.review("e0007", "legacy, reviewed")
    assert await store.remove("e0008") is not None
    groups = await counted(store)  # rebuilt on first use
    assert groups == await truth(store) and sum(groups.values()) == 450
    assert await redis.zcard(keys.DLQ_UNREVIEWED) == 449
    assert await store.rebuild_groups() == 0  # idempotent: everything is counted already
    assert await counted(store) == await truth(store)
