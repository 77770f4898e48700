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
- `in_progress_timeout_s`, set after arq's constructor to WORKER_LEASE_S: the lease, renewed by
  our heartbeat while the job runs (a dead worker's job re-runs once it lapses);
- `allow_pick_jobs`, which arq's SIGTERM handler clears: how finish_job tells a hand-back;
- `sem` and `job_counter`, given back after an outage interrupted arq's start_jobs mid-way;
- `job_tasks` (the jobs whose function is still running), read to tell a lost lease.

Promotion of due retries, recurring schedules' ticks and the burst mode that also waits for
retries run beside arq's `main()`, not inside a copy of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import redis.asyncio as aioredis
from arq import Retry, Worker
from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix
from arq.cron import CronJob, cron
from arq.typing import StartupShutdown, WorkerCoroutine
from arq.worker import func
from redis.exceptions import NoScriptError, WatchError

from graphworks_core.connections import UNREACHABLE
from graphworks_core.envelope import Envelope
from graphworks_core.outage import Backoff, Outage
from graphworks_core.settings import Settings
from worker.liveness import LIVENESS_LEASES, announce, exchange_control, new_worker_info, retire

log = logging.getLogger("graphworks.worker")

# What stops arq's loop during an outage: the connection errors, and the WatchError redis-py
# raises instead when the connection drops while start_jobs WATCHes a key (arq handles a real
# WatchError from EXEC itself, so one that reaches main() is the outage).
ARQ_LOOP_OUTAGE: tuple[type[BaseException], ...] = (*UNREACHABLE, WatchError)
OUTAGE_RERUN_MS = 500  # a job cut short by an outage runs again this long after Redis is back
CONTROL_EVERY_S = 0.5  # how often a worker reads the paused types and publishes what it runs
SCHEDULE_BUG_PAUSE_S = 5.0  # a schedule tick that raised (not an outage) is tried again after this

RUNNER_FUNCTION = "graphworks_job"
JOB_KEY_PREFIX = job_key_prefix  # arq's job record: `arq:job:<arq job id>`
IN_PROGRESS_KEY_PREFIX = in_progress_key_prefix  # set while a worker runs the arq job (its lease)

__all__ = [
    "IN_PROGRESS_KEY_PREFIX",
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
    async def completed(
        self,
        env: Envelope,
        record: str,
        *,
        pipe: aioredis.client.Pipeline | None = ...,
        timing: tuple[float, float] | None = ...,
    ) -> bool: ...


class JobRunner(Protocol):
    paused: frozenset[str]  # job types paused (worker/pause.py), refreshed every CONTROL_EVERY_S
    parked_runs: set[str]  # arq jobs the runner parked: their runs are given back
    running: dict[str, tuple[str, str]]  # arq job id -> (job id, type), while the processor runs
    pending_completions: dict[str, tuple[Envelope, str, tuple[float, float] | None]] | None

    @property
    def settings(self) -> Settings: ...
    @property
    def queue(self) -> _Queue: ...
    @property
    def stats(self) -> _Stats: ...

    async def run(self, raw: Any, *, job_try: int = ..., arq_job_id: str = ..., due_at: float | None = ...) -> str: ...


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
        enqueued = ctx.get("enqueue_time")  # worker/queue.py writes the due time there (the wait histogram)
        due_at = enqueued.timestamp() if isinstance(enqueued, datetime) else None
        return await runner.run(raw, job_try=job_try, arq_job_id=str(ctx.get("job_id", "")), due_at=due_at)
    except ARQ_LOOP_OUTAGE as exc:
        # Redis went away under the job (its limiter, its state) or while the runner recorded the
        # outcome: one line per outage, not a traceback per job. The job runs again shortly after
        # Redis is back (finish_job waits for it), and this run is given back: no attempt, no run.
        outage: Outage | None = ctx.get("outage")
        if outage is not None:
            outage.failed(exc)
        ctx["outage_runs"].add(ctx.get("job_id"))
        raise Retry(defer=timedelta(milliseconds=OUTAGE_RERUN_MS)) from None
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
    """arq's Worker running every job through `runner`, with our JSON codec and settings, plus:

    - leases: a running job's in-progress key lives WORKER_LEASE_S and is renewed every third of
      it while the job runs, so a SIGKILLed worker's jobs start again within one lease however
      long their timeout, and a live worker's long job is never started twice;
    - liveness: the same heartbeat writes this worker's record (worker/liveness.py);
    - shutdown: SIGTERM stops taking jobs, gives running ones WORKER_SHUTDOWN_GRACE_S, then hands
      the rest back (in-progress key deleted, arq's run count given back: no attempt spent);
    - Redis outages: the poll loop, promotion, heartbeat and finish survive connection errors,
      back off and reconnect; an outcome reached meanwhile is recorded once Redis is back.
    """

    def __init__(
        self,
        runner: JobRunner,
        *,
        burst: bool = False,
        cron_jobs: Sequence[CronJob] = (),
        on_startup: StartupShutdown | None = None,
        schedule_tick: Callable[[], Awaitable[object]] | None = None,
        ops_tick: tuple[Callable[[], Awaitable[object]], float] | None = None,
        **kwargs: Any,
    ) -> None:
        """`schedule_tick`: called every SCHEDULE_TICK_S to enqueue due recurring schedules
        (worker/schedules.py `ScheduleStore.tick`, passed in: this module cannot import it)."""
        settings = runner.settings
        self._user_startup = on_startup
        self._started_up = False
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
            on_startup=self._startup_once,
            max_jobs=settings.worker_max_jobs,
            job_timeout=settings.worker_job_timeout_s,
            keep_result=0,
            poll_delay=settings.worker_poll_delay_s,
            job_serializer=serialize,
            job_deserializer=deserialize,
            ctx={"runner": runner, "outage": None, "outage_runs": set()},
            # SIGTERM/SIGINT: arq stops taking jobs and waits this long for running ones, then
            # cancels them; finish_job below hands each back to the queue.
            job_completion_wait=math.ceil(settings.worker_shutdown_grace_s),
            **kwargs,
        )
        # arq marks a job in progress for this long; the heartbeat renews it while the job runs.
        self.in_progress_timeout_s = settings.worker_lease_s
        self.runner = runner
        runner.pending_completions = {}
        self.graphworks_burst = burst
        self.info = new_worker_info()
        self.outage = Outage(log, "worker")
        self.ctx["outage"] = self.outage
        self.handed_back = 0
        self.beats = 0  # heartbeats that reached Redis
        self._stopping = False
        self._lease_ms = int(settings.worker_lease_s * 1000)
        self._beat_every_s = settings.worker_lease_s / 3
        self._promote_every_s = settings.worker_promote_interval_s
        self._schedule_tick = schedule_tick
        self._tick_every_s = settings.schedule_tick_s
        # The ops loop (worker/ops_loop.py: metrics flush, minute snapshots, alerts) and its period.
        self._ops_tick = ops_tick

    async def _startup_once(self, ctx: dict[str, Any]) -> None:
        # arq runs on_startup each time main() starts; after an outage main() starts again.
        if not self._started_up and self._user_startup is not None:
            await self._user_startup(ctx)
        self._started_up = True

    @property
    def shutting_down(self) -> bool:
        return not self.allow_pick_jobs

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
        """arq 0.28's finish_job, plus, in the same MULTI: the runner's count-once completion, the
        release of the job's ordering key, and on shutdown the run given back. Retried through a
        Redis outage until it lands, so an outcome reached meanwhile is recorded once."""
        completed = self.runner.pending_completions.pop(job_id, None) if self.runner.pending_completions else None
        handed_back = not finish and incr_score is None and self.shutting_down
        outage_run = job_id in self.ctx["outage_runs"]
        self.ctx["outage_runs"].discard(job_id)
        if job_id in self.runner.parked_runs:  # parked, its type paused: keep the arq job, give the run back
            self.runner.parked_runs.discard(job_id)
            finish, result_data, incr_score, keep_in_progress, outage_run = False, None, None, None, True
        backoff = Backoff()
        while True:
            try:
                await self._finish(
                    job_id, finish, result_data, result_timeout_s, keep_result_forever, incr_score,
                    keep_in_progress, completed, handed_back or outage_run,
                )  # fmt: skip
            except UNREACHABLE as exc:
                self.outage.failed(exc)
                await asyncio.sleep(backoff.next())
                continue
            except NoScriptError:
                # A failover between redis-py loading the scripts and running the transaction (its
                # retry lands on the new master, whose script cache is empty). The transaction's
                # other commands ran; each is idempotent, and a new pipeline loads the scripts first.
                await asyncio.sleep(0)
                continue
            self.outage.ok()
            break
        if handed_back:
            self.handed_back += 1
            log.info("job=%s handed back to the queue on shutdown (no attempt spent)", job_id.split(".")[0])

    async def _finish(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
        completed: tuple[Envelope, str, tuple[float, float] | None] | None,
        give_back_run: bool,
    ) -> None:
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
            if give_back_run:
                tr.decr(retry_key_prefix + job_id)  # this run does not count towards WORKER_MAX_JOB_RUNS
            if delete_keys:
                tr.delete(*delete_keys)
            if completed is not None:
                env, record, timing = completed
                # with its status record, its event and its run/wait times
                await self.runner.stats.completed(env, record, pipe=tr, timing=timing)
                await self.runner.queue.release(env, pipe=tr)  # its ordering key's next job
            await tr.execute()

    async def drained(self) -> bool:
        """Nothing running, queued or scheduled."""
        if self.job_counter:
            return False
        queued, scheduled = await self.runner.queue.depth()
        return queued == 0 and scheduled == 0

    async def main(self) -> None:
        """arq's main loop, with promotion and the heartbeat beside it; in burst mode, until
        drained. A Redis outage that stops arq's loop restarts it once Redis answers again."""
        log.info(
            "worker starting: id=%s queue=%s burst=%s lease_s=%s",
            self.info.id, self.queue_name, self.graphworks_burst, self._lease_ms / 1000,
        )  # fmt: skip
        self._stopping = False
        with contextlib.suppress(*UNREACHABLE):  # know the paused types before the first job is taken
            self.runner.paused = await exchange_control(
                self.pool, self.info.id, {}, None, LIVENESS_LEASES * self._lease_ms / 1000
            )
        helpers = [
            asyncio.create_task(self._promote_due_forever(), name="promote"),
            asyncio.create_task(self._heartbeat_forever(), name="heartbeat"),
            asyncio.create_task(self._control_forever(), name="control"),
        ]
        if self._schedule_tick is not None:
            helpers.append(asyncio.create_task(self._tick_schedules_forever(self._schedule_tick), name="schedules"))
        if self._ops_tick is not None:
            tick, every_s = self._ops_tick
            helpers.append(asyncio.create_task(self._tick_schedules_forever(tick, every_s), name="ops"))
        try:
            while True:
                arq_main = asyncio.create_task(super().main())
                try:
                    if self.graphworks_burst:
                        await self._until_drained(arq_main)
                    else:
                        # Shielded: a cancel (SIGTERM) reaches this task at once even when arq's loop
                        # swallows its own (seen under load: redis-py eats cancels); the finally
                        # below then stops arq's loop with a bounded wait.
                        await asyncio.shield(arq_main)
                    return
                except ARQ_LOOP_OUTAGE as exc:
                    self.outage.failed(exc)
                    await self._until_redis_answers()
                    self._give_back_leaked_slot()
                finally:
                    arq_main.cancel()
                    await asyncio.wait([arq_main], timeout=5)  # bounded, like the helpers below
                    if arq_main.done() and not arq_main.cancelled():
                        arq_main.exception()  # retrieved: it is the outage handled above
        finally:
            await self._stop_helpers(helpers)
            with contextlib.suppress(*UNREACHABLE):
                await retire(self.pool, self.info.id)

    async def _stop_helpers(self, helpers: list[asyncio.Task[None]]) -> None:
        # A cancel can be swallowed inside redis-py (seen: the promoter kept looping after its
        # cancel, and the worker never exited), so the loops also stop on this flag, and the
        # wait is bounded: one more round of each loop at most.
        self._stopping = True
        for task in helpers:
            task.cancel()
        longest = max(self._beat_every_s, self._promote_every_s, self._tick_every_s)
        _, pending = await asyncio.wait(helpers, timeout=longest + 1)
        for task in pending:
            log.warning("a worker loop did not stop: %s", task.get_name())
            task.cancel()

    def _give_back_leaked_slot(self) -> None:
        """arq's start_jobs takes a slot (semaphore + job_counter) before its Redis calls and keeps
        it when one of them fails; without this an outage would cost a slot each time, and burst
        mode, which waits for job_counter to reach 0, would never end."""
        running = sum(1 for task in self.tasks.values() if not task.done())
        for _ in range(max(0, self.job_counter - running)):
            self.job_counter -= 1
            self.sem.release()

    async def _until_redis_answers(self) -> None:
        backoff = Backoff()
        while True:
            try:
                await self.pool.ping()
            except UNREACHABLE as exc:
                self.outage.failed(exc)
                await asyncio.sleep(backoff.next())
            else:
                self.outage.ok()
                return

    async def _promote_due_forever(self) -> None:
        backoff = Backoff()
        while not self._stopping:
            try:
                await self.runner.queue.promote_due()
            except UNREACHABLE as exc:
                self.outage.failed(exc)
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            await asyncio.sleep(self._promote_every_s)

    async def _tick_schedules_forever(
        self, tick: Callable[[], Awaitable[object]], every_s: float | None = None
    ) -> None:
        """Recurring schedules' due ticks, enqueued by whichever workers see them (one job each);
        with `every_s`, the ops loop's tick on that period."""
        backoff = Backoff()
        while not self._stopping:
            if not self.shutting_down:  # a worker on its way out takes nothing new, and starts nothing
                try:
                    await tick()
                except UNREACHABLE as exc:
                    self.outage.failed(exc)
                    await asyncio.sleep(backoff.next())
                    continue
                except Exception:  # a bug must not stop the schedules for good, nor log every tick
                    log.exception("schedule tick failed; trying again in %g s", SCHEDULE_BUG_PAUSE_S)
                    await asyncio.sleep(SCHEDULE_BUG_PAUSE_S)
                    continue
                backoff.reset()
            await asyncio.sleep(self._tick_every_s if every_s is None else every_s)

    async def _control_forever(self) -> None:
        """Every CONTROL_EVERY_S: read the paused types into the runner (so a job of a paused type is
        parked, not run, without a Redis read per job) and publish what this worker runs."""
        while not self._stopping:
            try:
                running = dict(self.runner.running.values())
                self.runner.paused = await exchange_control(
                    self.pool, self.info.id, running, self.runner.paused, LIVENESS_LEASES * self._lease_ms / 1000
                )
            except UNREACHABLE as exc:
                self.outage.failed(exc)
            await asyncio.sleep(CONTROL_EVERY_S)

    async def _heartbeat_forever(self) -> None:
        while not self._stopping:
            try:
                await self.heartbeat()
            except UNREACHABLE as exc:
                self.outage.failed(exc)
            await asyncio.sleep(self._beat_every_s)

    async def heartbeat(self) -> None:
        """Renew the lease of every job this worker is running, and its liveness record, in one
        round trip (one PEXPIRE per job running longer than a third of a lease, plus two)."""
        running = [job_id for job_id, task in self.tasks.items() if not task.done()]
        self.info.last_seen_at = datetime.now(UTC)
        self.info.running = len(running)
        async with self.pool.pipeline(transaction=False) as pipe:
            for job_id in running:
                pipe.pexpire(in_progress_key_prefix + job_id, self._lease_ms)
            announce(pipe, self.info, ttl_s=LIVENESS_LEASES * self._lease_ms / 1000)
            renewed = await pipe.execute()
        self.beats += 1
        for job_id, ok in zip(running, renewed, strict=False):
            # Only while the job itself runs: once it returned, finish_job may have deleted the key.
            if not ok and job_id in self.job_tasks:
                log.warning("job=%s lease lost (its in-progress key had expired): another worker may run it", job_id)

    async def _until_drained(self, arq_main: asyncio.Task[None]) -> None:
        while not arq_main.done():
            await asyncio.sleep(self.poll_delay_s)
            if await self.drained():
                await asyncio.gather(*self.tasks.values())
                if await self.drained():
                    log.info("worker burst done: nothing queued, running or scheduled")
                    return
        await asyncio.shield(arq_main)  # arq's loop ended on its own (a signal, an error): its outcome is ours
