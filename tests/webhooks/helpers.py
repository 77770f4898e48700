"""Helpers for webhook tests: registering subscriptions directly, reading queued envelopes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from graphworks_core import keys
from graphworks_core.envelope import Envelope, decode
from tests.integration.processes import is_cron_run
from worker.arq_adapter import JOB_KEY_PREFIX as job_key_prefix
from worker.subscriptions.client_state import client_state_digest, new_client_state
from worker.subscriptions.registry import SubscriptionRecord, SubscriptionRegistry

TENANT = "5f1d9a3c-0000-4000-8000-00000000a11c"


async def register(
    redis: aioredis.Redis,
    sub_id: str,
    resource: str = "users/u-1/messages",
    tenant_id: str | None = TENANT,
    secret: str | None = None,
) -> str:
    """A registry record for `sub_id`; returns its clientState."""
    secret = secret or new_client_state()
    record = SubscriptionRecord(
        id=sub_id,
        resource=resource,
        change_type="created",
        notification_url="http://127.0.0.1:1/webhooks/graph",
        expiration=datetime.now(UTC) + timedelta(days=1),
        client_state_sha256=client_state_digest(secret),
        tenant_id=tenant_id,
    )
    await SubscriptionRegistry(redis).put(record)
    return secret


def item(sub_id: str, client_state: str | None, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "subscriptionId": sub_id,
        "clientState": client_state,
        "changeType": "created",
        "resource": "Users/u-1/Messages/m-1",
        "resourceData": {"id": "m-1", "@odata.type": "#Microsoft.Graph.Message"},
        "tenantId": TENANT,
    }
    return base | extra


async def queued(redis: aioredis.Redis, queue: str = "default") -> list[Envelope]:
    """Envelopes in the queue zset (runnable now), in score order; the workers' cron runs are no envelopes."""
    ids = [m.decode() for m in await redis.zrange(keys.queue(queue), 0, -1) if not is_cron_run(m)]
    out = []
    for arq_id in ids:
        raw = await redis.get(job_key_prefix + arq_id)
        if raw:
            out.append(decode(json.loads(raw)["a"][0]))
    return out


async def queued_notifications(redis: aioredis.Redis, queue: str = "default") -> list[dict[str, Any]]:
    """The notification payloads the receiver stored: the items of every queued notification_batch job."""
    jobs = await queued(redis, queue)
    assert all(j.type == "notification_batch" for j in jobs), [j.type for j in jobs]
    return [n for j in jobs for n in j.payload["items"]]


async def commands_processed(redis: aioredis.Redis) -> int:
    return int((await redis.info("stats"))["total_commands_processed"])
