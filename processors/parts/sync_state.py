"""A sync's state in Redis, per (tenant, resource): the lock, the link to resume from, the version of
every item delivered so far, and the ids seen in a full round.

Each page is committed in one MULTI (under WATCH of the lock and the link): the page's changes go
to a transactional sink (the Redis Stream) together with the item versions and the next link, so
a crash before EXEC refetches the page and a crash after it resumes from the next one: every
change reaches the stream exactly once. With an external sink (HTTP, callable) the sink is
called first and the MULTI follows: at least once, and item versions still skip what the sink
already had when Graph repeats an item.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.exceptions import WatchError

from graphworks_core import keys
from processors.parts.sync_targets import SyncTarget, removal_reason, version_of
from worker.sinks.base import ExternalSink, Sink, SinkRecord, TransactionalSink

ChangeKind = Literal["created", "updated", "deleted"]
CHANGE_KINDS: tuple[ChangeKind, ...] = ("created", "updated", "deleted")
ABSENT_AFTER_FULL_SYNC = "absent_after_full_sync"

_ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LinkRecord(BaseModel):
    """Where to resume: the next page of a round (`next`) or the start of the next round (`delta`)."""

    url: str
    kind: Literal["next", "delta"]
    full: bool  # this round started from the initial URL: items not seen in it were deleted
    pages: int = 0  # pages committed in this round
    window: str | None = None  # calendar: the window the round's links cover
    contact_folder: str | None = None  # contacts: the folder the round's links cover


class SyncChange(BaseModel):
    """One change as the sink receives it."""

    kind: Literal["sync_change"] = "sync_change"
    change: ChangeKind
    resource: str
    resource_key: str
    tenant_id: str | None
    item_id: str
    version: str | None
    reason: str | None = None  # deletions: Graph's @removed reason, or absent_after_full_sync
    full_sync: bool
    item: dict[str, Any] | None
    synced_at: datetime


class LockLost(Exception):
    """Another run took the resource's lock (ours expired): stop without writing."""


class SyncState:
    def __init__(self, redis: aioredis.Redis, tenant: str | None, target: SyncTarget) -> None:
        self.redis = redis
        self.tenant = tenant
        self.target = target
        tenant_key = tenant or "-"
        self.lock_key = keys.sync_state(tenant_key, target.key, "lock")
        self.link_key = keys.sync_state(tenant_key, target.key, "link")
        self.items_key = keys.sync_state(tenant_key, target.key, "items")
        self.seen_key = keys.sync_state(tenant_key, target.key, "seen")
        self.folder_key = keys.sync_state(tenant_key, target.key, "folder")
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self, owner: str, ttl_s: float) -> bool:
        """Take (or, for the same job re-run after a worker died, retake) the one-at-a-time lock."""
        return bool(await self._acquire(keys=[self.lock_key], args=[owner, int(ttl_s * 1000)]))

    async def release(self, owner: str) -> None:
        await self._release(keys=[self.lock_key], args=[owner])

    def retarget(self, target: SyncTarget) -> None:
        """The same collection, now with its contact folder known."""
        if target.key != self.target.key:
            raise ValueError(f"{target.key} is not {self.target.key}")
        self.target = target

    async def contact_folder(self) -> str | None:
        """The default contact folder's id, as looked up once for this sync."""
        raw = await self.redis.get(self.folder_key)
        return raw.decode() if isinstance(raw, bytes) else raw

    async def keep_contact_folder(self, folder: str | None) -> None:
        """Keep the looked-up folder id (None: forget it, so the next run looks it up again)."""
        if folder is None:
            await self.redis.delete(self.folder_key)
        else:
            await self.redis.set(self.folder_key, folder)

    async def link(self) -> LinkRecord | None:
        raw = await self.redis.get(self.link_key)
        return LinkRecord.model_validate_json(raw) if raw else None

    async def restart(self) -> None:
        """Forget the link and the partial round: the next page comes from the initial URL."""
        await self.redis.delete(self.link_key, self.seen_key)

    async def commit_page(
        self,
        sink: Sink,
        items: Sequence[dict[str, Any]],
        nxt: LinkRecord,
        *,
        owner: str,
        lock_ttl_s: float,
        now: float,
    ) -> dict[str, int]:
        """Deliver this page's changes and store `nxt`, atomically with a transactional sink."""
        ids = [str(i["id"]) for i in items if i.get("id") is not None]
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(self.lock_key, self.link_key)
                if await pipe.get(self.lock_key) != owner.encode():
                    raise LockLost(self.target.key)
                versions = await pipe.hmget(self.items_key, ids) if ids else []  # type: ignore[misc]
                known: dict[str, bytes | None] = dict(zip(ids, versions, strict=True))
                changes, upserts, removed = self._diff(items, known, nxt.full, now)
                if nxt.full and nxt.kind == "delta":
                    changes += await self._absent(pipe, ids, upserts, removed, now)
                    removed |= {c.item_id for c in changes if c.reason == ABSENT_AFTER_FULL_SYNC}
                records = [SinkRecord(c.model_dump_json()) for c in changes]
                if records and isinstance(sink, ExternalSink):
                    await sink.send(records)
                pipe.multi()  # type: ignore[no-untyped-call]
                if records and isinstance(sink, TransactionalSink):
                    sink.stage(pipe, records)
                if upserts:
                    pipe.hset(self.items_key, mapping=upserts)
                if removed:
                    pipe.hdel(self.items_key, *removed)
                if nxt.full and nxt.kind == "next" and ids:
                    pipe.sadd(self.seen_key, *ids)
                if nxt.kind == "delta":
                    pipe.delete(self.seen_key)
                pipe.set(self.link_key, nxt.model_dump_json())
                pipe.pexpire(self.lock_key, int(lock_ttl_s * 1000))
                counts = {"pages": 1} | {k: sum(1 for c in changes if c.change == k) for k in CHANGE_KINDS}
                for name, value in counts.items():
                    if value:
                        pipe.hincrby(keys.PROCESSOR_STATS, f"sync.{name}", value)
                await pipe.execute()
            except WatchError as exc:
                raise LockLost(self.target.key) from exc
        return counts

    def _diff(
        self, items: Sequence[dict[str, Any]], known: dict[str, bytes | None], full: bool, now: float
    ) -> tuple[list[SyncChange], dict[str, str], set[str]]:
        changes: list[SyncChange] = []
        upserts: dict[str, str] = {}
        removed: set[str] = set()
        current: dict[str, str | None] = {k: v.decode() if v else None for k, v in known.items()}
        for item in items:
            if item.get("id") is None:
                continue
            item_id = str(item["id"])
            reason = removal_reason(item)
            if reason is not None:
                if current.get(item_id) is None:
                    continue  # never delivered (or already deleted): nothing for the sink to forget
                changes.append(self._change("deleted", item_id, None, item, full, now, reason))
                current[item_id] = None
                removed.add(item_id)
                upserts.pop(item_id, None)
                continue
            version = version_of(item)
            before = current.get(item_id)
            if before == version:
                continue  # Graph repeated an item we already delivered in this version
            changes.append(self._change("updated" if before else "created", item_id, version, item, full, now))
            current[item_id] = version
            upserts[item_id] = version
            removed.discard(item_id)
        return changes, upserts, removed

    async def _absent(
        self, pipe: Any, ids: list[str], upserts: dict[str, str], removed: set[str], now: float
    ) -> list[SyncChange]:
        """At the end of a full round: items delivered before that the round did not list were deleted."""
        delivered = {k.decode() for k in await pipe.hkeys(self.items_key)} | set(upserts)
        seen = {m.decode() for m in await pipe.smembers(self.seen_key)} | set(ids)
        return [
            self._change("deleted", item_id, None, None, True, now, ABSENT_AFTER_FULL_SYNC)
            for item_id in sorted(delivered - seen - removed)
        ]

    def _change(
        self,
        change: ChangeKind,
        item_id: str,
        version: str | None,
        item: dict[str, Any] | None,
        full: bool,
        now: float,
        reason: str | None = None,
    ) -> SyncChange:
        return SyncChange(change=change, resource=self.target.resource, resource_key=self.target.key,
                          tenant_id=self.tenant, item_id=item_id, version=version, reason=reason, full_sync=full,
                          item=item, synced_at=datetime.fromtimestamp(now, UTC))  # fmt: skip
