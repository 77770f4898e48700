"""The operators' audit log: every action taken through the ops API or the CLI (retry, bulk redrive,
review, purge, pause, resume, clear, schedule changes), with time, role, action, target and count.
A capped Redis Stream (`keys.AUDIT`), newest first when read; the CLI records its role as `cli`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel

from graphworks_core import keys

AUDIT_MAXLEN = 100_000


class AuditEntry(BaseModel):
    id: str  # the stream id: the cursor to continue after
    at: datetime
    role: str  # admin | viewer | service | cli
    action: str  # e.g. dlq.retry, dlq.redrive, dlq.review, dlq.purge, queue.pause, queue.clear, schedule.put
    target: str  # a dead-letter id, a job type, a filter, a schedule name
    count: int = 1
    detail: str | None = None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_cursor: str | None


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class AuditLog:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def record(self, action: str, *, role: str, target: str, count: int = 1, detail: str | None = None) -> None:
        fields: dict[str, str | int] = {"role": role, "action": action, "target": target, "count": count}
        if detail:
            fields["detail"] = detail
        await self.redis.xadd(keys.AUDIT, fields, maxlen=AUDIT_MAXLEN, approximate=True)  # type: ignore[arg-type]

    async def page(self, *, limit: int = 50, cursor: str | None = None) -> AuditPage:
        """Newest first; `cursor` is the `next_cursor` of the page before."""
        top = f"({cursor}" if cursor else "+"
        rows = await self.redis.xrevrange(keys.AUDIT, max=top, min="-", count=limit)
        entries = []
        for stream_id, raw in rows:
            sid = _text(stream_id)
            f = {_text(k): _text(v) for k, v in raw.items()}
            at = datetime.fromtimestamp(int(sid.split("-")[0]) / 1000, UTC)
            entries.append(AuditEntry(id=sid, at=at, role=f["role"], action=f["action"], target=f["target"],
                                      count=int(f.get("count", 1)), detail=f.get("detail")))  # fmt: skip
        return AuditPage(entries=entries, next_cursor=entries[-1].id if len(entries) == limit else None)
