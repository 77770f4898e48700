"""The subscription registry in Redis: one JSON record per subscription plus a zset by expiry.

The receiver reads records with one MGET per delivery; the renewal cron reads the zset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict

from graphworks_core import keys


class SubscriptionRecord(BaseModel):
    """What we remember of a subscription we created. The clientState itself is never stored."""

    model_config = ConfigDict(frozen=True)

    id: str
    resource: str
    change_type: str
    notification_url: str
    lifecycle_url: str | None = None
    expiration: datetime
    client_state_sha256: str
    tenant_id: str | None = None
    include_resource_data: bool = False
    encryption_certificate_id: str | None = None
    created_at: datetime | None = None
    renewed_at: datetime | None = None


class SubscriptionRegistry:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def put(self, record: SubscriptionRecord) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.subscription(record.id), record.model_dump_json())
            pipe.zadd(keys.SUBSCRIPTIONS, {record.id: record.expiration.timestamp()})
            await pipe.execute()

    async def get(self, subscription_id: str) -> SubscriptionRecord | None:
        return (await self.get_many([subscription_id])).get(subscription_id)

    async def get_many(self, subscription_ids: Iterable[str]) -> dict[str, SubscriptionRecord]:
        """Records by id for the ids that are known (one round trip)."""
        ids: Sequence[str] = list(dict.fromkeys(subscription_ids))
        if not ids:
            return {}
        raws = await self.redis.mget([keys.subscription(i) for i in ids])
        return {i: SubscriptionRecord.model_validate_json(raw) for i, raw in zip(ids, raws, strict=True) if raw}

    async def delete(self, subscription_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.subscription(subscription_id))
            pipe.zrem(keys.SUBSCRIPTIONS, subscription_id)
            await pipe.execute()

    async def all(self) -> list[SubscriptionRecord]:
        """Every record, soonest expiry first."""
        ids = [
            m.decode() if isinstance(m, bytes) else str(m) for m in await self.redis.zrange(keys.SUBSCRIPTIONS, 0, -1)
        ]
        found = await self.get_many(ids)
        return [found[i] for i in ids if i in found]

    async def expiring_before(self, when: float) -> list[SubscriptionRecord]:
        """Records whose expiration is before `when` (epoch seconds), soonest first."""
        raw = await self.redis.zrangebyscore(keys.SUBSCRIPTIONS, "-inf", when)
        ids = [m.decode() if isinstance(m, bytes) else str(m) for m in raw]
        found = await self.get_many(ids)
        return [found[i] for i in ids if i in found]
