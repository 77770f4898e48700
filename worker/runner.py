"""The runner: what arq calls for every job. Decode, validate, run the processor (the limiter
wraps each of its Graph requests; a long wait defers the job without costing an attempt), and on
failure classify -> policy -> schedule a retry or dead-letter.

Attempts are counted here, in the envelope's history, never by arq's job_try: each retry is a new
arq job with a fresh expiry, so a long retry schedule cannot die of arq's job expiry. arq's job_try
only tells how many times *this* attempt was started, i.e. how many workers died running it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic

from graphworks_core.clock import Clock, utc
from graphworks_core.connections import REDIS_DOWN
from graphworks_core.envelope import AttemptRecord, Envelope, UndecodableJob, decode, new_job_id
from graphworks_core.errors import ErrorClass
from graphworks_core.settings import Settings
from graphworks_core.status import record_for
from ratelimits import booking
from ratelimits.base import LimitDeferred
from worker.classify import Failure, classify
from worker.context import JobContext
from worker.deadletter.models import DeadLetterEntry
from worker.deadletter.store import DeadLetterStore
from worker.graph.client import GraphClient
from worker.job_type import JobType
from worker.pause import QueueControl
from worker.policy import DeadLetter, PolicySet, RetryDecision, decide
from worker.queue import JobQueue, Scheduled, arq_job_id
from worker.stats import Stats, Timing

log = logging.getLogger("graphworks.runner")

Outcome = Literal["completed", "retry", "dead_lettered", "deferred", "parked"]
MAX_RAW_KEPT = 64 * 1024
BOOKED_QUEUE_PRIORITY = 99  # queue position of a deferred job holding a booked slot (worker/queue.py)
# This run's start and the time its job was due (epoch s), for the run and wait histograms;
# per task, since one runner runs many jobs at once.
_started: ContextVar[tuple[float, float] | None] = ContextVar("graphworks_run_started", default=None)


@dataclass
class Runner:
    settings: Settings
    queue: JobQueue
    dlq: DeadLetterStore
    stats: Stats
    graph: GraphClient
    clock: Clock
    policies: PolicySet
    job_types: Mapping[str, JobType]
    rand: Callable[[], float] = random.random
    # When set (by the arq worker), successes are handed over here, keyed by arq job id, and
    # counted inside arq's finish transaction: one round trip fewer per job, and the count
    # lands atomically with the job leaving the queue.
    pending_completions: dict[str, tuple[Envelope, str, Timing | None]] | None = None
    # Pause (worker/pause.py): the paused types as the worker last read them (every ~0.5 s, not per
    # job); the arq jobs parked by this runner, whose runs the worker gives back; what runs now
    # (arq job id -> (job id, type)), which the worker publishes for per-type stats.
    paused: frozenset[str] = frozenset()
    parked_runs: set[str] = field(default_factory=set)
    running: dict[str, tuple[str, str]] = field(default_factory=dict)
    _control: QueueControl | None = None

    async def run(self, raw: Any, *, job_try: int = 1, arq_job_id: str = "", due_at: float | None = None) -> Outcome:
        """`due_at`: when the job became due (arq's enqueue time, which worker/queue.py sets to the due
        time), for the wait histogram; None: the envelope's created_at."""
        started = self.clock.now()
        text = raw if isinstance(raw, str) else json.dumps(raw, default=str)
        try:
            env = decode(text)
        except UndecodableJob as exc:
            _started.set((started, due_at if due_at is not None else started))
            return await self._undecodable(exc, arq_job_id)
        _started.set((started, due_at if due_at is not None else env.created_at.timestamp()))
        if job_try > self.settings.worker_max_job_runs:
            failure = Failure(
                ErrorClass.UNKNOWN,
                f"this attempt was started {job_try - 1} times without finishing (worker died or runner error)",
            )
            return await self._dead_letter(env, failure, failure.message)
        if env.type in self.paused and arq_job_id and await self._park(env, arq_job_id):
            return "parked"
        spec = self.job_types.get(env.type)
        if spec is None:
            failure = Failure(ErrorClass.VALIDATION, f"no processor for job type {env.type!r}")
            return await self._dead_letter(env, failure, failure.message)
        try:
            payload = spec.model.model_validate(env.payload)
        except pydantic.ValidationError as exc:
            return await self._failed(env, exc)
        ctx = JobContext(self.graph, self.queue.redis, self.settings, self.clock, env, arq_job_id or _run_id(env))
        try:
            # The limiter is applied around each Graph request (GraphClient); a booked slot
            # from an earlier deferral is handed to it here.
            with booking.holding(env.limit_booking):
                async with asyncio.timeout(self.settings.worker_job_timeout_s * 0.95):
                    self.running[ctx.run_id] = (env.id, env.type)
                    try:
                        result = await spec.run(ctx, payload)
                    finally:
                        self.running.pop(ctx.run_id, None)
        except LimitDeferred as deferred:
            return await self._deferred(env, deferred)
        except REDIS_DOWN:
            raise  # Redis is down, not the job: no attempt is spent; the worker runs it again later
        except Exception as exc:
            return await self._failed(env, exc)
        log.info("job=%s type=%s attempt=%d outcome=completed", env.id, env.type, env.attempt + 1)
        record = record_for(
            env, "completed", run_id=arq_job_id or _run_id(env), now=self.clock.now(), result=result,
            progress=ctx.reported[-1] if ctx.reported else None,
        ).stored()  # fmt: skip
        if self.pending_completions is not None and arq_job_id:
            # Counted, recorded and its ordering key released in arq's finish transaction.
            self.pending_completions[arq_job_id] = (env, record, self._timing())
        else:
            await self.stats.completed(env, record, timing=self._timing())
            await self.queue.release(env)
        return "completed"

    async def _deferred(self, env: Envelope, deferred: LimitDeferred) -> Outcome:
        """The limiter wants a long wait: the same attempt runs again later, costing nothing."""
        again = env.model_copy(update={"deferrals": env.deferrals + 1, "limit_booking": deferred.booking})
        # A job with a booked slot jumps the queue when due: behind a backlog it would miss its slot.
        jump = BOOKED_QUEUE_PRIORITY if deferred.booking is not None else None
        await self.queue.put(
            [Scheduled(again, due_at=deferred.until, use_idempotency=False, queue_priority=jump, joins_order=False)]
        )
        await self.stats.deferred(env)
        log.info(
            "job=%s type=%s attempt=%d outcome=deferred until=%.3f keys=%s",
            env.id, env.type, env.attempt + 1, deferred.until, ",".join(deferred.keys),
        )  # fmt: skip
        return "deferred"

    async def _failed(self, env: Envelope, exc: BaseException) -> Outcome:
        failure = classify(exc)
        n = 1 + sum(1 for a in env.budget_history() if a.error_class == failure.error_class)
        decision = decide(self.policies.for_(env.type, failure.error_class), failure, n, self.rand())
        if isinstance(decision, RetryDecision) and env.attempt + 1 >= self.policies.max_total_attempts:
            decision = DeadLetter(f"{self.policies.max_total_attempts} attempts made, the most any job gets")
        if isinstance(decision, DeadLetter):
            return await self._dead_letter(env, failure, decision.reason)
        record = AttemptRecord.of(failure, utc(self.clock.now()), decision.delay_s)
        retry = env.model_copy(
            update={
                "attempt": env.attempt + 1,
                "history": [*env.history, record],
                "refresh_auth": decision.refresh_auth,
                "limit_booking": None,
            }
        )
        due = self.clock.now() + decision.delay_s
        await self.queue.put(
            [Scheduled(retry, due_at=due, use_idempotency=False, joins_order=False, event="retry_scheduled")]
        )
        await self.stats.retried(env, failure.error_class, timing=self._timing())
        log.warning(
            "job=%s type=%s attempt=%d outcome=retry class=%s status=%s graph_code=%s request_id=%s delay_s=%.3f",
            env.id, env.type, env.attempt + 1, failure.error_class, failure.status,
            failure.graph_code, failure.request_id, decision.delay_s,
        )  # fmt: skip
        return "retry"

    async def _dead_letter(self, env: Envelope, failure: Failure, reason: str) -> Outcome:
        # The entry names the job its ordering key releases; stored before the release, so a crash
        # in between re-runs this job (the release is idempotent) instead of losing the entry.
        released_next = await self.queue.next_in_order(env)
        entry = DeadLetterEntry.from_envelope(
            env, failure, reason=reason, at=utc(self.clock.now()), released_next=released_next
        )
        await self.dlq.put(entry)
        await self.queue.release(env)
        if await self.stats.dead_lettered(
            env, failure.error_class, self._dead_record(env, failure, entry.id), timing=self._timing()
        ):
            log.error(
                "job=%s type=%s attempt=%d outcome=dead_lettered class=%s status=%s graph_code=%s request_id=%s"
                " reason=%s",
                env.id, env.type, env.attempt + 1, failure.error_class, failure.status,
                failure.graph_code, failure.request_id, reason,
            )  # fmt: skip
        return "dead_lettered"

    async def _undecodable(self, exc: UndecodableJob, arq_job_id: str) -> Outcome:
        job_id = arq_job_id.split(".")[0] if arq_job_id else new_job_id()
        env = Envelope(id=job_id, type="unknown", payload={}, queue=self.queue.name)
        failure = Failure(ErrorClass.UNDECODABLE, exc.reason)
        entry = DeadLetterEntry.from_envelope(
            env, failure, reason=exc.reason, at=utc(self.clock.now()), payload=exc.raw[:MAX_RAW_KEPT]
        )
        await self.dlq.put(entry)
        if await self.stats.dead_lettered(
            env, failure.error_class, self._dead_record(env, failure, entry.id), timing=self._timing()
        ):
            log.error("job=%s outcome=dead_lettered class=undecodable reason=%s", job_id, exc.reason)
        return "dead_lettered"

    def _timing(self) -> Timing | None:
        """(run time, wait time) of this task's run, or None outside one."""
        started = _started.get()
        if started is None:
            return None
        start, due = started
        return self.clock.now() - start, start - due

    async def _park(self, env: Envelope, arq_job_id: str) -> bool:
        """Its type is paused: park the job (same attempt; the worker gives the run back), unless resumed."""
        if self._control is None:
            self._control = QueueControl(self.queue.redis, self.queue, self.settings)
        if not await self._control.park(env.type, arq_job_id):
            return False
        self.parked_runs.add(arq_job_id)
        log.info("job=%s type=%s parked: its type is paused", env.id, env.type)
        return True

    def _dead_record(self, env: Envelope, failure: Failure, entry_id: str) -> str:
        now = self.clock.now()
        last = AttemptRecord.of(failure, utc(now), None)
        ended = env.model_copy(update={"history": [*env.history, last]})
        return record_for(ended, "dead_lettered", run_id=_run_id(env), now=now, dead_letter_id=entry_id).stored()


def _run_id(env: Envelope) -> str:
    return arq_job_id(env)
