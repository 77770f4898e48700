"""The Redis dead-letter store: entry JSON in one hash, ids in a zset scored by last failure time,
and the groups by cause kept current by the same scripts that write entries (redis_lua.py).

Listings follow a (score, id) cursor over the smallest index that covers the filter: the zset of
each group that can match, the unreviewed index, or the whole index; the work per request is
bounded (SCAN_BUDGET entries examined), so no request scans a big store.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import redis.asyncio as aioredis

from graphworks_core import keys
from worker.deadletter import redis_lua
from worker.deadletter.models import (
    DeadLetterCursorPage,
    DeadLetterEntry,
    DeadLetterFilter,
    DeadLetterGroup,
    DeadLetterPage,
    GroupKey,
    decode_cursor,
    encode_cursor,
)

BATCH = 200
SCAN_BUDGET = 5_000  # entries a listing examines per request at most (a filter on `reviewed` may skip)
MERGE_MAX = 32  # a filter matching more groups than this reads the whole index instead
REBUILD_BATCH = 200
REMOVE_CHUNK = 100  # ids per removal script: each call stays around a millisecond

Position = tuple[float, bytes]  # (score, id): the newest-first order is score desc, then id desc


def _score(entry: DeadLetterEntry) -> float:
    return entry.last_failure_at.timestamp()


def _is_empty(flt: DeadLetterFilter | None) -> bool:
    return flt is None or flt == DeadLetterFilter()


def _b(raw: bytes | str) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode()


def _s(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _at(score: float) -> datetime:
    return datetime.fromtimestamp(score, UTC)


class RedisDeadLetterStore:
    """DeadLetterStore on Redis; works whether or not the client decodes responses."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._entries = keys.DLQ_ENTRIES
        self._index = keys.DLQ_INDEX
        self._keys = [keys.DLQ_ENTRIES, keys.DLQ_INDEX, keys.DLQ_UNREVIEWED, keys.DLQ_GROUPS, keys.DLQ_GROUP_OF]
        self._group_prefix = keys.dlq_group("")
        self._put = redis.register_script(redis_lua.PUT)
        self._remove_one = redis.register_script(redis_lua.REMOVE_ONE)
        self._remove_many = redis.register_script(redis_lua.REMOVE_MANY)
        self._replace = redis.register_script(redis_lua.REPLACE_IF_SAME)
        self._rebuild = redis.register_script(redis_lua.REBUILD)
        self._groups_ready = False

    def _put_args(self, entry: DeadLetterEntry) -> list[Any]:
        safe = entry.redacted()
        return [self._group_prefix, safe.id, safe.model_dump_json(), repr(_score(safe)),
                GroupKey.of(safe).encode(), "1" if safe.reviewed else "0"]  # fmt: skip

    async def put(self, entry: DeadLetterEntry) -> None:
        """Store (or overwrite, same id) an entry, redacted; entry, indexes and groups change together."""
        await self._put(keys=self._keys, args=self._put_args(entry))

    async def put_many(self, entries: Sequence[DeadLetterEntry]) -> None:
        """`put` each, pipelined in one round trip (each put atomic on its own)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                await self._put(keys=self._keys, args=self._put_args(entry), client=pipe)
            await pipe.execute()

    async def get(self, entry_id: str) -> DeadLetterEntry | None:
        """The entry with this id, or None."""
        raw = await self._hget(entry_id)
        return None if raw is None else DeadLetterEntry.model_validate_json(raw)

    async def page(self, flt: DeadLetterFilter | None = None, *, limit: int = 50, offset: int = 0) -> DeadLetterPage:
        """One page, newest last_failure_at first; total counts every match (a scan, when filtered)."""
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
            async for batch in self.walk(flt):
                for entry in batch:
                    if offset <= total < offset + limit:
                        entries.append(entry)
                    total += 1
        end = offset + len(entries)
        return DeadLetterPage(entries=entries, total=total, next_offset=end if end < total else None)

    async def scan(self, flt: DeadLetterFilter | None = None) -> AsyncIterator[DeadLetterEntry]:
        """Every matching entry, newest first, loaded BATCH at a time."""
        async for batch in self.walk(flt):
            for entry in batch:
                yield entry

    async def cursor_page(
        self, flt: DeadLetterFilter | None = None, *, limit: int = 50, cursor: str | None = None,
        budget: int = SCAN_BUDGET,
    ) -> DeadLetterCursorPage:  # fmt: skip
        """Up to `limit` matching entries after `cursor`, newest first, examining at most `budget`.
        ValueError for a cursor this store did not give out."""
        flt = flt or DeadLetterFilter()
        pos = None
        if cursor:
            score, entry_id = decode_cursor(cursor)
            pos = (score, entry_id.encode())
        found: list[DeadLetterEntry] = []
        sources, exact = await self._sources(flt)
        scanned = 0
        while sources and len(found) < limit and scanned < budget:
            want = limit - len(found) if exact else min(max(limit, BATCH), budget - scanned)
            rows, exhausted = await self._after(sources, flt, pos, want)
            if not rows:
                return DeadLetterCursorPage(entries=found, next_cursor=None)
            entries = {e.id: e for e in await self._load([member for _, member in rows])}
            rest = False  # rows left unexamined in this batch
            for i, (score, member) in enumerate(rows):
                pos = (score, member)
                scanned += 1
                entry = entries.get(_s(member))
                if entry is not None and flt.matches(entry):
                    found.append(entry)
                    if len(found) == limit:
                        rest = i < len(rows) - 1
                        break
            if exhausted and not rest:
                return DeadLetterCursorPage(entries=found, next_cursor=None)
        if pos is None or not sources:
            return DeadLetterCursorPage(entries=found, next_cursor=None)
        return DeadLetterCursorPage(entries=found, next_cursor=encode_cursor(pos[0], _s(pos[1])))

    async def walk(
        self, flt: DeadLetterFilter | None = None, *, batch: int = BATCH
    ) -> AsyncIterator[list[DeadLetterEntry]]:
        """Every matching entry, newest first, a batch at a time. The position is a (score, id)
        cursor, so callers may remove entries while walking (redrive, purge) and none is skipped."""
        flt = flt or DeadLetterFilter()
        sources, _ = await self._sources(flt)
        pos: Position | None = None
        while sources:
            rows, exhausted = await self._after(sources, flt, pos, batch)
            if not rows:
                return
            pos = rows[-1]
            entries = await self._load([member for _, member in rows])
            matching = [e for e in entries if flt.matches(e)]
            if matching:
                yield matching
            if exhausted:
                return

    async def remove(self, entry_id: str) -> DeadLetterEntry | None:
        """Delete and return the entry; of two concurrent removes only one gets it."""
        raw = await self._remove_one(keys=self._keys, args=[self._group_prefix, entry_id])
        return None if raw is None else DeadLetterEntry.model_validate_json(raw)

    async def remove_many(self, entry_ids: Sequence[str]) -> int:
        """Delete these entries in one round trip; returns how many were there."""
        if not entry_ids:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:  # REMOVE_CHUNK ids a script call
            for start in range(0, len(entry_ids), REMOVE_CHUNK):
                chunk = entry_ids[start : start + REMOVE_CHUNK]
                await self._remove_many(keys=self._keys, args=[self._group_prefix, *chunk], client=pipe)
            return sum(int(n) for n in await pipe.execute())

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
            args = [self._group_prefix, entry_id, raw, updated.model_dump_json(), "1" if reviewed else "0",
                    repr(_score(current))]  # fmt: skip
            result = await self._replace(keys=self._keys, args=args)
            if result == 1:
                return updated
            if result == 0:
                return None

    async def purge(self, flt: DeadLetterFilter | None = None) -> int:
        """Delete every matching entry, a batch per call; returns how many this call deleted."""
        deleted = 0
        async for batch in self.walk(flt):
            deleted += await self.remove_many([entry.id for entry in batch])
        return deleted

    async def count(self) -> int:
        """How many entries the store holds."""
        return int(await self._redis.zcard(self._index))

    async def count_matching(self, flt: DeadLetterFilter | None = None) -> int:
        """ZCOUNTs over the covering indexes when they match exactly, else a walk (a batch per call)."""
        flt = flt or DeadLetterFilter()
        sources, exact = await self._sources(flt)
        if not exact:
            return sum([len(batch) async for batch in self.walk(flt)])
        low: str | float = "-inf" if flt.since is None else flt.since.timestamp()
        high = "+inf" if flt.until is None else f"({flt.until.timestamp()!r}"
        async with self._redis.pipeline(transaction=False) as pipe:
            for src in sources:
                pipe.zcount(src, low, high)
            counts = await pipe.execute()
        return sum(int(c) for c in counts)

    async def groups(self, flt: DeadLetterFilter | None = None) -> list[DeadLetterGroup]:
        """The groups by cause, largest first: a few calls whatever the store's size."""
        await self.ensure_groups()
        rows = await self._redis.zrevrange(keys.DLQ_GROUPS, 0, -1, withscores=True)
        found = [(GroupKey.decode(_s(raw)), _s(raw), int(count)) for raw, count in rows if int(count) > 0]
        found = [f for f in found if flt is None or flt.matches_group(f[0])]
        if not found:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for _, raw, _ in found:
                pipe.zrange(keys.dlq_group(raw), 0, 0, withscores=True)
                pipe.zrevrange(keys.dlq_group(raw), 0, 0, withscores=True)
            ends = await pipe.execute()
        groups = []
        for i, (key, _, count) in enumerate(found):
            oldest, newest = ends[2 * i], ends[2 * i + 1]
            if not oldest or not newest:
                continue  # emptied between the two reads
            groups.append(DeadLetterGroup(**key.model_dump(), count=count, first_at=_at(float(oldest[0][1])),
                                          last_at=_at(float(newest[0][1])), sample_id=_s(newest[0][0])))  # fmt: skip
        groups.sort(key=lambda g: (-g.count, g.type, g.error_class, g.graph_code or "", g.status or 0))
        return groups

    async def types(self) -> set[str]:
        """The job types that have dead letters (from the groups)."""
        await self.ensure_groups()
        rows = await self._redis.zrange(keys.DLQ_GROUPS, 0, -1)
        return {GroupKey.decode(_s(raw)).type for raw in rows}

    async def ensure_groups(self) -> None:
        """Rebuild the groups once if this store predates them (the ready marker is missing)."""
        if self._groups_ready:
            return
        if not await self._redis.exists(keys.DLQ_GROUPS_READY):
            await self.rebuild_groups()
        self._groups_ready = True

    async def rebuild_groups(self, progress: Any = None) -> int:
        """Count every entry that is in no group yet, REBUILD_BATCH per call; safe while entries come
        and go, and to run twice. Returns how many it counted; `progress(counted, seen)` per batch."""
        cursor = 0
        counted = seen = 0
        while True:
            cursor, rows = await cast(
                "Awaitable[tuple[int, dict[Any, Any]]]",
                self._redis.hscan(self._entries, cursor, count=REBUILD_BATCH),
            )
            args: list[Any] = [self._group_prefix]
            for entry_id, raw in rows.items():
                entry = DeadLetterEntry.model_validate_json(raw)
                args += [_s(entry_id), GroupKey.of(entry).encode(), repr(_score(entry))]
            if len(args) > 1:
                counted += int(await self._rebuild(keys=self._keys, args=args))
                seen += len(rows)
                if progress is not None:
                    progress(counted, seen)
            if int(cursor) == 0:
                break
        await self._redis.set(keys.DLQ_GROUPS_READY, "1")
        self._groups_ready = True
        return counted

    async def _sources(self, flt: DeadLetterFilter) -> tuple[list[str], bool]:
        """The zsets to read for `flt`, and whether they match it exactly (no entry to skip)."""
        exact = flt.reviewed is None
        if flt.narrows_group():
            await self.ensure_groups()
            rows = await self._redis.zrange(keys.DLQ_GROUPS, 0, -1)
            matched = [_s(raw) for raw in rows if flt.matches_group(GroupKey.decode(_s(raw)))]
            if len(matched) <= MERGE_MAX:
                return [keys.dlq_group(raw) for raw in matched], exact
            return [self._index], False
        if flt.reviewed is False:
            return [keys.DLQ_UNREVIEWED], True
        return [self._index], exact

    async def _after(
        self, sources: list[str], flt: DeadLetterFilter, pos: Position | None, n: int
    ) -> tuple[list[Position], bool]:
        """The next `n` members of the union of `sources` after `pos` within the filter's time range,
        newest first, in one round trip; and whether nothing is left after them."""
        low: str | float = "-inf" if flt.since is None else flt.since.timestamp()
        high = "+inf" if flt.until is None else f"({flt.until.timestamp()!r}"
        async with self._redis.pipeline(transaction=False) as pipe:
            for src in sources:
                if pos is not None:
                    # Members sharing the cursor's score: all of them (ties are rare), the rest by range.
                    pipe.zrevrangebyscore(src, repr(pos[0]), repr(pos[0]), withscores=True)
                    pipe.zrevrangebyscore(src, f"({pos[0]!r}", low, start=0, num=n, withscores=True)
                else:
                    pipe.zrevrangebyscore(src, high, low, start=0, num=n, withscores=True)
            replies = await pipe.execute()
        step = 2 if pos is not None else 1
        exhausted = True
        streams: list[list[Position]] = []
        for i in range(len(sources)):
            ranged = [(float(score), _b(member)) for member, score in replies[i * step + step - 1]]
            if len(ranged) >= n:
                exhausted = False
            if pos is not None:
                ties = [(float(score), _b(member)) for member, score in replies[i * step]]
                ranged = [t for t in ties if t[1] < pos[1]] + ranged
            streams.append(ranged)
        merged = list(heapq.merge(*streams, reverse=True))
        if len(merged) > n:
            exhausted = False
        return merged[:n], exhausted

    async def _hget(self, entry_id: str) -> bytes | str | None:
        # redis-py types hash commands as sync-or-async; on redis.asyncio they are awaitables.
        return await cast("Awaitable[bytes | str | None]", self._redis.hget(self._entries, entry_id))

    async def _load(self, ids: Sequence[Any]) -> list[DeadLetterEntry]:
        if not ids:
            return []
        raws = await cast("Awaitable[list[bytes | str | None]]", self._redis.hmget(self._entries, list(ids)))
        # An id without JSON was removed between the index read and this one: skip it.
        return [DeadLetterEntry.model_validate_json(raw) for raw in raws if raw is not None]
