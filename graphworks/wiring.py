"""Which pieces a worker is made of, chosen in one place: the limiter, the Graph client, the
dead-letter store, the job types, the cron jobs, what runs at start. Everything below takes
what it needs as arguments; only this module (and the CLI and demo over it) picks.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from graphworks_core.clock import Clock, SystemClock
from graphworks_core.settings import Settings
from graphworks_core.startup_heap import freeze_startup_heap
from processors.registry import JOB_TYPES
from ratelimits.base import Limiter
from ratelimits.build import build_limiter
from worker.arq_adapter import GraphworksWorker, cron_job
from worker.config_file import FileConfig, load_file_config
from worker.deadletter.redis_store import RedisDeadLetterStore
from worker.graph.auth import token_provider_from
from worker.graph.client import GraphClient
from worker.graph.warmup import preload_graph_paths, warm_http_stack
from worker.ops_loop import OpsLoop
from worker.queue import JobQueue
from worker.runner import Runner
from worker.schedules import ScheduleStore
from worker.stats import Stats
from worker.status import trim_job_indexes
from worker.subscriptions.renewal import renew_subscriptions


def build_runner(
    settings: Settings,
    redis: aioredis.Redis,
    *,
    clock: Clock | None = None,
    limiter: Limiter | None = None,
    graph: GraphClient | None = None,
    config: FileConfig | None = None,
) -> Runner:
    """The runner of one worker process. No `limiter`: the shared Redis one from the `[limits]`
    table (NoLimit if disabled); it is applied by the GraphClient around every request."""
    clock = clock or SystemClock()
    config = config or load_file_config(settings.graphworks_config)
    if limiter is None:
        limiter = build_limiter(settings, config.limits, redis, clock)
    graph = graph or GraphClient(
        settings.graph_base,
        token_provider_from(settings, redis),
        timeout_s=settings.graph_call_timeout_s,
        limiter=limiter,
    )
    # The SDK's request builders import lazily; load them now so a job's first call is not slower.
    preload_graph_paths(graph)
    return Runner(
        settings=settings,
        queue=JobQueue.from_settings(settings, redis, clock),
        dlq=RedisDeadLetterStore(redis),
        stats=Stats.from_settings(settings, redis),
        graph=graph,
        clock=clock,
        policies=config.policy_set(),
        job_types=JOB_TYPES,
    )


async def _warm_up(ctx: dict[str, Any]) -> None:
    """Before the first job: the HTTP stack's first-use cost, then the startup heap out of the GC."""
    await warm_http_stack()
    freeze_startup_heap()


def build_worker(runner: Runner, *, burst: bool = False, **kwargs: Any) -> GraphworksWorker:
    """The arq worker for `runner`, with the subscription renewal cron and the recurring schedules' ticks."""
    renewal = cron_job(
        renew_subscriptions, name="renew_subscriptions", every_min=runner.settings.subscription_renew_every_min
    )
    trim = cron_job(trim_job_indexes, name="trim_job_indexes", every_min=30)
    schedules = ScheduleStore(runner.queue.redis, runner.queue, runner.settings, runner.clock)
    alerts = load_file_config(runner.settings.graphworks_config).alerts
    ops = OpsLoop(runner.queue.redis, runner.settings, alerts, runner.clock)  # metrics flush, snapshots, alerts
    kwargs.setdefault("ops_tick", (ops.tick, ops.every_s))
    return GraphworksWorker(
        runner, burst=burst, cron_jobs=[renewal, trim], on_startup=_warm_up, schedule_tick=schedules.tick, **kwargs
    )
