"""arq's Worker, wired to the runner: JSON codec, promotion of due jobs, and a burst mode that
waits for scheduled retries as well as queued jobs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
from arq import Retry, Worker
from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix
from arq.utils import poll
from arq.worker import func

from processors.registry import JOB_TYPES
from processors.warmup import preload_graph_paths, warm_http_stack
from ratelimits.base import Limiter
from ratelimits.build import build_limiter
from webhooks.renewal import renewal_cron
from worker import codec
from worker.clock import Clock, SystemClock
from worker.deadletter.redis_store import RedisDeadLetterStore
from worker.graph.auth import token_provider_from
from worker.graph.client import GraphClient
from worker.queue import JobQueue
from worker.runner import Runner
from worker.settings import Settings
from worker.startup_heap import freeze_startup_heap
from worker.stats import Stats

log = logging.getLogger("graphworks.worker")


def build_runner(
    settings: Settings,
    redis: aioredis.Redis,
    *,
    clock: Clock | None = None,
    limiter: Limiter | None = None,
    graph: GraphClient | None = None,
) -> Runner:
    """The runner of one worker process. No `limiter`: the shared Redis one from the `[limits]`
    table (NoLimit if disabled); it is applied by the GraphClient around every request."""
    clock = clock or SystemClock()
    if limiter is None:
        limiter = build_limiter(settings, redis, clock)
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
        stats=Stats(redis),
        graph=graph,
        clock=clock,
        policies=settings.policies,
        job_types=JOB_TYPES,
    )


async def graphworks_job(ctx: dict[str, Any], raw: Any) -> str:
    """The one arq function: every job is an envelope for the runner.

    The runner turns every failure of a *job* into a retry or a dead-letter. If the runner itself
    fails (Redis unreachable while it records the outcome, a bug), a plain exception would make arq
    drop the job, so it asks arq to run it again shortly instead; after WORKER_MAX_JOB_RUNS starts
    the runner dead-letters it.
    """
    runner: Runner = ctx["runner"]
    job_try = int(ctx.get("job_try") or 1)
    try:
        return await runner.run(raw, job_try=job_try, arq_job_id=str(ctx.get("job_id", "")))
    except Exception:
        log.exception("job=%s runner error on start %d; arq will run it again", ctx.get("job_id"), job_try)
        # arq re-scores the job to now + defer (it compensates for our priority-shifted score).
        raise Retry(defer=timedelta(milliseconds=min(60_000, 500 * 2**job_try))) from None


class GraphworksWorker(Worker):
    def __init__(self, runner: Runner, *, burst: bool = False, **kwargs: Any) -> None:
        settings = runner.settings
        super().__init__(
            functions=[func(graphworks_job, name=codec.RUNNER_FUNCTION, max_tries=10_000)],
            queue_name=runner.queue.queue_key,
            # ArqRedis over the same connection pool: arq's cron enqueues through it (enqueue_job).
            redis_pool=ArqRedis(
                connection_pool=runner.queue.redis.connection_pool,
                job_serializer=codec.serialize,
                job_deserializer=codec.deserialize,
            ),
            # Subscription renewal (webhooks/renewal.py): one worker per tick renews what expires soon.
            cron_jobs=kwargs.pop("cron_jobs", None) or [renewal_cron(settings)],
            burst=False,  # arq's burst ignores our scheduled set; see main()
            max_jobs=settings.worker_max_jobs,
            job_timeout=settings.worker_job_timeout_s,
            keep_result=0,
            poll_delay=settings.worker_poll_delay_s,
            job_serializer=codec.serialize,
            job_deserializer=codec.deserialize,
            ctx={"runner": runner},
            # On SIGTERM/SIGINT, let running jobs finish (up to their timeout) instead of cancelling them.
            job_completion_wait=int(settings.worker_job_timeout_s),
            **kwargs,
        )
        # arq re-runs a dead worker's job once its in-progress key expires: job timeout + this margin.
        self.in_progress_timeout_s = settings.worker_job_timeout_s + settings.worker_in_progress_margin_s
        self.runner = runner
        runner.pending_completions = {}
        self.graphworks_burst = burst
        self._promote_every_s = settings.worker_promote_interval_s
        self._last_promote = 0.0

    async def _poll_iteration(self) -> None:
        if time.monotonic() - self._last_promote >= self._promote_every_s:
            self._last_promote = time.monotonic()
            await self.runner.queue.promote_due()
        await super()._poll_iteration()

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        """arq's finish_job, plus the runner's count-once completion in the same MULTI."""
        completed = self.runner.pending_completions.pop(job_id, None) if self.runner.pending_completions else None
        async with self.pool.pipeline(transaction=True) as tr:
            delete_keys = []
            in_progress_key = in_progress_key_prefix + job_id
            if keep_in_progress is None:
                delete_keys.append(in_progress_key)
            else:
                tr.pexpire(in_progress_key, int(keep_in_progress * 1000))
            if finish:
                if result_data:
                    expire = None if keep_result_forever or result_timeout_s is None else int(result_timeout_s * 1000)
                    tr.set(result_key_prefix + job_id, result_data, px=expire)
                delete_keys += [retry_key_prefix + job_id, job_key_prefix + job_id]
                tr.zrem(abort_jobs_ss, job_id)
                tr.zrem(self.queue_name, job_id)
            elif incr_score:
                tr.zincrby(self.queue_name, incr_score, job_id)
            if delete_keys:
                tr.delete(*delete_keys)
            if completed is not None:
                await self.runner.stats.completed(completed, pipe=tr)
            await tr.execute()

    async def drained(self) -> bool:
        """Nothing running, queued or scheduled."""
        if self.job_counter:
            return False
        queued, scheduled = await self.runner.queue.depth()
        return queued == 0 and scheduled == 0

    async def main(self) -> None:
        # arq's main() with one change: burst mode ends only when scheduled retries are done too.
        log.info("worker starting: queue=%s burst=%s", self.queue_name, self.graphworks_burst)
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        await warm_http_stack()  # before the first permit: processors/warmup.py
        freeze_startup_heap()
        async for _ in poll(self.poll_delay_s):
            await self._poll_iteration()
            if self.graphworks_burst and await self.drained():
                await asyncio.gather(*self.tasks.values())
                if await self.drained():
                    log.info("worker burst done: nothing queued, running or scheduled")
                    return
