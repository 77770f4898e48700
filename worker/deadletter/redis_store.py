"""The Redis dead-letter store: entry JSON in one hash, ids in a zset scored by last failure time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any, cast

import redis.asyncio as aioredis

from graphworks_core import keys
from worker.deadletter.models import DeadLetterEntry, DeadLetterFilter, DeadLetterPage

BATCH = 200

# Get and delete in one step, so two concurrent removes (two operators redriving the same
# entry) cannot both get it back and enqueue the job twice.
_REMOVE = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return v
"""

# Compare-and-set on one entry: the new JSON is built in Python (re-encoding in Lua's cjson
# would turn [] into {}), and written only if nobody changed or removed the entry meanwhile.
_REPLACE_IF_SAME = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
if cur ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


def _score(entry: DeadLetterEntry) -> float:
    return entry.last_failure_at.timestamp()


def _is_empty(flt: DeadLetterFilter | None) -> bool:
    return flt is None or flt == DeadLetterFilter()


class RedisDeadLetterStore:
    """DeadLetterStore on Redis; works whether or not the client decodes responses."""

    def __init__(self, redis: aioredis.Redis, *, entries_key: str = keys.DLQ_ENTRIES,
                 index_key: str = keys.DLQ_INDEX) -> None:  # fmt: skip
        self._redis = redis
        self._entries = entries_key
        self._index = index_key
        self._remove = redis.register_script(_REMOVE)
        self._replace = redis.register_script(_REPLACE_IF_SAME)

    async def put(self, entry: DeadLetterEntry) -> None:
        """Store (or overwrite, same id) an entry, redacted; hash and index change together."""
        safe = entry.redacted()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._entries, safe.id, safe.model_dump_json())
            pipe.zadd(self._index, {safe.id: _score(safe)})
            await pipe.execute()

    async def get(self, entry_id: str) -> DeadLetterEntry | None:
        """The entry with this id, or None."""
        raw = await self._hget(entry_id)
        return None if raw is None else DeadLetterEntry.model_validate_json(raw)

    async def page(self, flt: DeadLetterFilter | None = None, *, limit: int = 50, offset: int = 0) -> DeadLetterPage:
        """One page, newest last_failure_at first; total counts every match."""
        if limit < 1 or offset < 0:
            raise ValueError("limit must be >= 1 and offset >= 0")
        if _is_empty(flt):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zcard(self._index)
                pipe.zrevrange(self._index, offset, offset + limit - 1)
                total, ids = await pipe.execute()
            entries = await self._load(ids)
        else:
            total, entries = 0, []
            async for batch in self._matching_batches(flt):
                for entry in batch:
                    if offset <= total < offset + limit:
                        entries.append(entry)
                    total += 1
        end = offset + len(entries)
        return DeadLetterPage(entries=entries, total=total, next_offset=end if end < total else None)

    async def scan(self, flt: DeadLetterFilter | None = None) -> AsyncIterator[DeadLetterEntry]:
        """Every matching entry, newest first, loaded BATCH at a time."""
        async for batch in self._matching_batches(flt):
            for entry in batch:
                yield entry

    async def remove(self, entry_id: str) -> DeadLetterEntry | None:
        """Delete and return the entry; of two concurrent removes only one gets it."""
        raw = await self._remove(keys=[self._entries, self._index], args=[entry_id])
        return None if raw is None else DeadLetterEntry.model_validate_json(raw)

    async def review(self, entry_id: str, note: str | None, *, reviewed: bool = True) -> DeadLetterEntry | None:
        """Set reviewed and (when given) the note; a None note keeps the existing one."""
        while True:  # retries only when another writer changed this very entry in between
            raw = await self._hget(entry_id)
            if raw is None:
                return None
            current = DeadLetterEntry.model_validate_json(raw)
            update: dict[str, Any] = {"reviewed": reviewed}
            if note is not None:
                update["note"] = note
            updated = current.model_copy(update=update)
            result = await self._replace(keys=[self._entries], args=[entry_id, raw, updated.model_dump_json()])
            if result == 1:
                return updated
            if result == 0:
                return None

    async def purge(self, flt: DeadLetterFilter | None = None) -> int:
        """Delete every matching entry; returns how many this call deleted."""
        deleted = 0
        async for batch in self._matching_batches(flt):
            if not batch:
                continue
            async with self._redis.pipeline(transaction=True) as pipe:
                ids = [entry.id for entry in batch]
                pipe.hdel(self._entries, *ids)
                pipe.zrem(self._index, *ids)
                removed, _ = await pipe.execute()
            # HDEL's count, not len(batch): a concurrent remove may have taken some already.
            deleted += int(removed)
        return deleted

    async def count(self) -> int:
        """How many entries the store holds."""
        return int(await self._redis.zcard(self._index))

    async def _hget(self, entry_id: str) -> bytes | str | None:
        # redis-py types hash commands as sync-or-async; on redis.asyncio they are awaitables.
        return await cast("Awaitable[bytes | str | None]", self._redis.hget(self._entries, entry_id))

    async def _load(self, ids: list[Any]) -> list[DeadLetterEntry]:
        if not ids:
            return []
        raws = await cast("Awaitable[list[bytes | str | None]]", self._redis.hmget(self._entries, ids))
        # An id without JSON was removed between the index read and this one: skip it.
        return [DeadLetterEntry.model_validate_json(raw) for raw in raws if raw is not None]

    async def _matching_batches(self, flt: DeadLetterFilter | None) -> AsyncIterator[list[DeadLetterEntry]]:
        """Matching entries, newest first, a batch at a time, narrowed by score range first.

        Batches follow a score cursor rather than an offset, so callers may remove entries
        while iterating (redrive, purge) without the listing skipping any. A batch always
        takes every member sharing its last score, so ties never straddle two batches.
        """
        flt = flt or DeadLetterFilter()
        low: str | float = "-inf" if flt.since is None else flt.since.timestamp()
        high: str | float = "+inf" if flt.until is None else f"({flt.until.timestamp()!r}"
        while True:
            rows = await self._redis.zrevrangebyscore(self._index, high, low, start=0, num=BATCH, withscores=True)
            if not rows:
                return
            last = float(rows[-1][1])
            ids = [member for member, score in rows if float(score) != last]
            if len(rows) < BATCH:
                ids += [member for member, score in rows if float(score) == last]
            else:
                ids += await self._redis.zrevrangebyscore(self._index, last, last)
            entries = await self._load(ids)
            yield [entry for entry in entries if flt.matches(entry)]
            if len(rows) < BATCH:
                return
            high = f"({last!r}"
