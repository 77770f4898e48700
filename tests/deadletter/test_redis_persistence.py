"""Dead-letter entries in Redis survive a server restart when Redis persists with AOF."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis.asyncio as aioredis

from graphworks.embedded_redis import start_redis
from worker.deadletter.models import DeadLetterEntry
from worker.deadletter.redis_store import RedisDeadLetterStore

MakeEntry = Callable[..., DeadLetterEntry]


async def test_entries_survive_a_redis_restart_with_aof(tmp_path: Path, make_entry: MakeEntry) -> None:
    entries = [make_entry(f"e{i}", minutes=i) for i in range(3)]
    server = start_redis(tmp_path, appendonly=True)
    try:
        client = aioredis.Redis.from_url(server.url)
        store = RedisDeadLetterStore(client)
        for entry in entries:
            await store.put(entry)
        await store.review("e1", "seen")
        await client.aclose()
    finally:
        server.stop()  # SIGTERM: redis-server fsyncs the AOF on the way down

    restarted = start_redis(tmp_path, port=server.port, appendonly=True)
    try:
        client = aioredis.Redis.from_url(restarted.url, decode_responses=True)
        store = RedisDeadLetterStore(client)
        assert await store.count() == 3
        assert [e.id for e in (await store.page()).entries] == ["e2", "e1", "e0"]
        reviewed = await store.get("e1")
        assert reviewed is not None and (reviewed.reviewed, reviewed.note) == (True, "seen")
        assert await store.get("e0") == entries[0]
        await client.aclose()
    finally:
        restarted.stop()
