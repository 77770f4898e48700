"""Building a SubscriptionManager from settings, and the cron function that renews subscriptions.

The composition root schedules it every SUBSCRIPTION_RENEW_EVERY_MIN minutes in every worker
(worker/arq_adapter.py `cron_job`); one worker renews per tick. Anything expiring within SUBSCRIPTION_RENEW_MARGIN_S
is renewed; what fails to renew (or already expired) is recreated and resynced.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from graphworks_core.clock import Clock
from graphworks_core.settings import Settings
from worker.graph.client import GraphClient
from worker.queue import JobQueue
from worker.subscriptions.crypto import KeyStore
from worker.subscriptions.jobs import enqueue_resync
from worker.subscriptions.manager import SubscriptionManager
from worker.subscriptions.registry import SubscriptionRecord, SubscriptionRegistry

log = logging.getLogger("graphworks.subscriptions")


@functools.lru_cache(maxsize=8)
def _key_store(path: Path | None, default_id: str | None) -> KeyStore:
    return KeyStore.from_path(path, default_id)


def key_store(settings: Settings) -> KeyStore:
    """The private keys named by WEBHOOK_ENCRYPTION_KEYS (read once per process)."""
    return _key_store(settings.webhook_encryption_keys, settings.webhook_encryption_cert_id)


def build_manager(
    graph: GraphClient, redis: aioredis.Redis, settings: Settings, clock: Clock, queue: JobQueue | None = None
) -> SubscriptionManager:
    async def resync(record: SubscriptionRecord) -> None:
        if queue is not None:
            await enqueue_resync(queue, record)

    return SubscriptionManager(
        graph,
        SubscriptionRegistry(redis),
        clock,
        keys=key_store(settings),
        tenant_id=settings.graph_tenant_id,
        renew_margin_s=settings.subscription_renew_margin_s,
        resync=resync if queue is not None else None,
    )


async def renew_subscriptions(ctx: dict[str, Any]) -> dict[str, Any]:
    """The cron function: renew what expires soon (ctx["runner"] is the worker's Runner)."""
    runner = ctx["runner"]
    manager = build_manager(runner.graph, runner.queue.redis, runner.settings, runner.clock, runner.queue)
    report = await manager.renew_due()
    if report.renewed or report.recreated or report.failed:
        log.info(
            "subscriptions renewed=%d recreated=%d failed=%d",
            len(report.renewed),
            len(report.recreated),
            len(report.failed),
        )
    return {"renewed": report.renewed, "recreated": report.recreated, "failed": report.failed}
