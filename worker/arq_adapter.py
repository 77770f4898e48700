"""Everything that knows arq: its job record format and key names, the one job function, the
Worker subclass, cron jobs. No other module imports arq (the import-linter contract in
pyproject.toml says so), so an arq upgrade is read, tested and adapted here.

What we take from arq, and how:
- its poll loop, job start, timeouts and in-progress keys, unchanged (public constructor options);
- its job record (`{"t", "f", "a", "k", "et"}`), written by worker/queue.py's Lua through
  `job_record`, read back through our JSON codec: no pickle anywhere;
- `finish_job`, overridden: arq's own transaction plus the runner's count-once completion, so a
  success costs one round trip, not two. It replaces an upstream method that is not a documented
  hook, so pyproject.toml pins arq's minor version and tests/unit/test_arq_adapter.py fails when
  upstream's `finish_job` changes from the one this override was written against;
- `in_progress_timeout_s`, set after arq's constructor (a dead worker's job re-runs once it lapses).

Promotion of due retries and the burst mode that also waits for them run beside arq's `main()`,
not inside a copy of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Protocol

import redis.asyncio as aioredis
from arq import Retry, Worker
from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix
from arq.cron import CronJob, cron
from arq.typing import StartupShutdown, WorkerCoroutine
from arq.worker import func

from graphworks_core.envelope import Envelope
from graphworks_core.settings import Settings

log = logging.getLogger("graphworks.worker")

RUNNER_FUNCTION = "graphworks_job"
JOB_KEY_PREFIX = job_key_prefix  # arq's job record: `arq:job:<arq job id>`

__all__ = [
    "JOB_KEY_PREFIX",
    "RUNNER_FUNCTION",
    "GraphworksWorker",
    "JobRunner",
    "cron_job",
    "deserialize",
    "job_record",
    "serialize",
]


# -- arq's job record, as JSON ------------------------------------------------------------------


def serialize(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode()


def deserialize(data: bytes) -> dict[str, Any]:
    """Never raises. A record that is not JSON (a poison message written by anything but us)
    decodes into a call of the runner with the raw text, so the runner dead-letters it as
    "undecodable" instead of arq failing it silently or a worker crash-looping on it."""
    try:
        obj = json.loads(data)
        if isinstance(obj, dict) and "f" in obj and "a" in obj:
            return obj
        if isinstance(obj, dict) and "s" in obj:  # a result record
            return obj
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass
    raw = data.decode("utf-8", errors="replace")
    return {"t": None, "f": RUNNER_FUNCTION, "a": [raw], "k": {}, "et": int(time.time() * 1000)}


def job_record(envelope_json: str, enqueue_ms: int) -> bytes:
    """An arq job record calling the runner with one envelope."""
    return serialize({"t": None, "f": RUNNER_FUNCTION, "a": [envelope_json], "k": {}, "et": enqueue_ms})


# -- what the worker needs of the runner (worker/runner.py), without importing it -------------


class _Queue(Protocol):
    redis: aioredis.Redis
    queue_key: str

    async def promote_due(self, limit: int = ...) -> int: ...
    async def depth(self) -> tuple[int, int]: ...
    async def release(self, env: Envelope, *, pipe: aioredis.client.Pipeline | None = ...) -> str | None: ...


class _Stats(Protocol):
    async def completed(self, env: Envelope, *, pipe: aioredis.client.Pipeline | None = ...) -> bool: ...


class JobRunner(Protocol):
    pending_completions: dict[str, Envelope] | None

    @property
    def settings(self) -> Settings: ...
    @property
    def queue(self) -> _Queue: ...
    @property
    def stats(self) -> _Stats: ...

    async def run(self, raw: Any, *, job_try: int = ..., arq_job_id: str = ...) -> str: ...


async def graphworks_job(ctx: dict[str, Any], raw: Any) -> str:
    """The one arq function: every job is an envelope for the runner.

    The runner turns every failure of a *job* into a retry or a dead-letter. If the runner itself
    fails (Redis unreachable while it records the outcome, a bug), a plain exception would make arq
    drop the job, so it asks arq to run it again shortly instead; after WORKER_MAX_JOB_RUNS starts
    the runner dead-letters it.
    """
    runner: JobRunner = ctx["runner"]
    job_try = int(ctx.get("job_try") or 1)
    try:
        return await runner.run(raw, job_try=job_try, arq_job_id=str(ctx.get("job_id", "")))
    except Exception:
        log.exception("job=%s runner error on start %d; arq will run it again", ctx.get("job_id"), job_try)
        # arq re-scores the job to now + defer (it compensates for our priority-shifted score).
        raise Retry(defer=timedelta(milliseconds=min(60_000, 500 * 2**job_try))) from None


def cron_job(fn: WorkerCoroutine, *, name: str, every_min: int) -> CronJob:
    """`fn(ctx)` every `every_min` minutes in every worker; arq gives each tick one job id, so one
    worker runs each tick. `ctx["runner"]` is that worker's runner."""
    return cron(
        fn,
        name=name,
        minute=set(range(0, 60, every_min)),
        second=0,
        unique=True,
        run_at_startup=False,
        timeout=max(60, every_min * 60 - 10),
    )


class GraphworksWorker(Worker):
    """arq's Worker running every job through `runner`, with our JSON codec and settings."""

    def __init__(
        self,
        runner: JobRunner,
        *,
        burst: bool = False,
        cron_jobs: Sequence[CronJob] = (),
        on_startup: StartupShutdown | None = None,
        **kwargs: Any,
    ) -> None:
        settings = runner.settings
        super().__init__(
            functions=[func(graphworks_job, name=RUNNER_FUNCTION, max_tries=10_000)],
            queue_name=runner.queue.queue_key,
            # ArqRedis over the same connection pool: arq's cron enqueues through it (enqueue_job).
            redis_pool=ArqRedis(
                connection_pool=runner.queue.redis.connection_pool,
                job_serializer=serialize,
                job_deserializer=deserialize,
            ),
            cron_jobs=list(cron_jobs) or None,
            burst=False,  # arq's burst ends with its queue zset empty; ours waits for scheduled retries too
            on_startup=on_startup,
            max_jobs=settings.worker_max_jobs,
            job_timeout=settings.worker_job_timeout_s,
            keep_result=0,
            poll_delay=settings.worker_poll_delay_s,
            job_serializer=serialize,
            job_deserializer=deserialize,
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
        """arq 0.28's finish_job, plus the runner's count-once completion and the release of the
        job's ordering key in the same MULTI."""
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
                await self.runner.queue.release(completed, pipe=tr)  # its ordering key's next job
            await tr.execute()

    async def drained(self) -> bool:
        """Nothing running, queued or scheduled."""
        if self.job_counter:
            return False
        queued, scheduled = await self.runner.queue.depth()
        return queued == 0 and scheduled == 0

    async def main(self) -> None:
        """arq's main loop, with due retries promoted beside it; in burst mode, until drained."""
        log.info("worker starting: queue=%s burst=%s", self.queue_name, self.graphworks_burst)
        promoter = asyncio.create_task(self._promote_due_forever())
        arq_main = asyncio.create_task(super().main())
        try:
            if self.graphworks_burst:
                await self._until_drained(arq_main)
            else:
                await arq_main
        finally:
            for task in (promoter, arq_main):
                task.cancel()
            for task in (promoter, arq_main):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _promote_due_forever(self) -> None:
        while True:
            await self.runner.queue.promote_due()
            await asyncio.sleep(self._promote_every_s)

    async def _until_drained(self, arq_main: asyncio.Task[None]) -> None:
        while not arq_main.done():
            await asyncio.sleep(self.poll_delay_s)
            if await self.drained():
                await asyncio.gather(*self.tasks.values())
                if await self.drained():
                    log.info("worker burst done: nothing queued, running or scheduled")
                    return
        await arq_main  # arq's loop ended on its own (a signal, an error): its outcome is ours
