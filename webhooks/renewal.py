"""Building a SubscriptionManager from settings, and the arq cron job that renews subscriptions.

The cron runs every SUBSCRIPTION_RENEW_EVERY_MIN minutes in every worker; arq gives each tick a
unique job id, so one worker renews per tick. Anything expiring within SUBSCRIPTION_RENEW_MARGIN_S
is renewed; what fails to renew (or already expired) is recreated and resynced.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from arq.cron import CronJob, cron

from webhooks.crypto import KeyStore
from webhooks.jobs import enqueue_resync
from webhooks.manager import SubscriptionManager
from webhooks.registry import SubscriptionRecord, SubscriptionRegistry
from worker.clock import Clock
from worker.graph.client import GraphClient
from worker.queue import JobQueue
from worker.settings import Settings

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
    """arq cron function: renew what expires soon (ctx["runner"] is the worker's Runner)."""
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


def renewal_cron(settings: Settings) -> CronJob:
    every = settings.subscription_renew_every_min
    return cron(
        renew_subscriptions,
        name="renew_subscriptions",
        minute=set(range(0, 60, every)),
        second=0,
        unique=True,
        run_at_startup=False,
        timeout=max(60, every * 60 - 10),
    )
