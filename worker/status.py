"""Reading and acting on jobs' status records (graphworks_core/status.py): status, wait, cancel,
list, the events stream, progress. The Python client, the service API and the CLI all call this.

Waiting costs no polling loop: a waiter sets the job's waiting marker, reads the record, and if
the job has not ended blocks on the job's own list (BLMOVE onto itself, so every waiter wakes),
which the job's end pushes to when the marker exists (worker/lua/outcome.lua, cancel.lua). The
block is cut into slices shorter than REDIS_SOCKET_TIMEOUT_S; a slice that ends re-reads the record.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import redis.asyncio as aioredis

from graphworks_core import keys
from graphworks_core.envelope import Envelope
from graphworks_core.payloads import PAYLOAD_MODELS
from graphworks_core.settings import Settings
from graphworks_core.status import JOB_STATES, JobEvent, JobStatus, Progress
from worker.arq_adapter import IN_PROGRESS_KEY_PREFIX, JOB_KEY_PREFIX
from worker.queue import JobQueue

LIST_SCAN_BATCH = 200
LIST_SCAN_MAX = 5000  # records read per `list_jobs` call at most, whatever the filter


class JobNotFound(LookupError):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job {job_id!r} (unknown, or its status record expired)")


class NotCancellable(Exception):
    """The job runs or has ended: a cancel cannot stop it (HTTP 409)."""

    def __init__(self, record: JobStatus) -> None:
        self.record = record
        super().__init__(f"job {record.id} is {record.status}: only a queued or scheduled job can be cancelled")


class WaitTimedOut(TimeoutError):
    def __init__(self, record: JobStatus, timeout_s: float) -> None:
        self.record = record
        super().__init__(f"job {record.id} is still {record.status} after {timeout_s:g} s")


@dataclass(frozen=True)
class JobPage:
    jobs: list[JobStatus]
    next_cursor: str | None


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class JobStatusStore:
    def __init__(self, redis: aioredis.Redis, queue: JobQueue, settings: Settings) -> None:
        self.redis = redis
        self.queue = queue
        self.settings = settings
        self._cancel = redis.register_script(resources.files("worker").joinpath("lua", "cancel.lua").read_text())
        # A blocking read must end before the socket timeout, or redis-py calls it a dead connection.
        self.block_slice_s = max(0.05, min(4.0, settings.redis_socket_timeout_s - 1.0))

    # -- reading --

    async def get(self, job_id: str) -> JobStatus:
        """The job's status record, with `running` and due `scheduled` told apart from the queue."""
        raw = await self.redis.get(keys.job_status(job_id))
        if raw is None:
            raise JobNotFound(job_id)
        record = JobStatus.model_validate_json(raw)
        return await self._live(record)

    async def _live(self, record: JobStatus) -> JobStatus:
        if record.status not in ("queued", "scheduled", "running"):
            return record
        if await self.redis.exists(IN_PROGRESS_KEY_PREFIX + record.run_id):
            return record if record.status == "running" else record.model_copy(update={"status": "running"})
        if record.status == "running":  # a progress write, then the worker died or handed it back
            return record.model_copy(update={"status": "queued"})
        if (
            record.status == "scheduled"
            and record.next_run_at
            and record.next_run_at.timestamp() <= self.queue.clock.now()
        ):
            return record.model_copy(update={"status": "queued"})
        return record

    async def wait(self, job_id: str, timeout_s: float) -> JobStatus:
        """The final record once the job ends; WaitTimedOut (holding the current record) after timeout_s."""
        deadline = time.monotonic() + timeout_s
        waiting = keys.job_waiting(job_id)
        marker_ttl = int(timeout_s) + 30
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(waiting, "1", nx=True, ex=marker_ttl)
            pipe.expire(waiting, marker_ttl, gt=True)
            await pipe.execute()
        done = keys.job_done(job_id)
        while True:
            record = await self.get(job_id)
            remaining = deadline - time.monotonic()
            if record.final:
                return record
            if remaining <= 0:
                raise WaitTimedOut(record, timeout_s)
            # Redis takes a fractional timeout (6.0+); redis-py's stub says int.
            await self.redis.blmove(done, done, min(remaining, self.block_slice_s), "LEFT", "RIGHT")  # type: ignore[arg-type]

    async def list_jobs(
        self, job_type: str | None, *, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        """One type's jobs (None: every type's), newest first; `cursor` is the `next_cursor` of the
        page before. Job ids sort by creation time, so pages of each type merge by id."""
        if status is not None and status not in JOB_STATES:
            raise ValueError(f"unknown status {status!r}; one of {', '.join(JOB_STATES)}")
        if job_type is not None:
            return await self._list_type(job_type, status, limit, cursor)
        pages = [await self._list_type(t, status, limit, cursor) for t in sorted(PAYLOAD_MODELS)]
        merged = sorted((r for p in pages for r in p.jobs), key=lambda r: r.id, reverse=True)[:limit]
        more = len(merged) == limit or any(p.next_cursor for p in pages)
        return JobPage(merged, merged[-1].id if merged and more else None)

    async def _list_type(self, job_type: str, status: str | None, limit: int, cursor: str | None) -> JobPage:
        found: list[JobStatus] = []
        upper = f"({cursor}" if cursor else "+"
        scanned = 0
        while len(found) < limit and scanned < LIST_SCAN_MAX:
            batch = await self.redis.zrevrangebylex(keys.jobs_index(job_type), upper, "-", start=0, num=LIST_SCAN_BATCH)
            ids = [_text(i) for i in batch]
            if not ids:
                return JobPage(found, None)
            scanned += len(ids)
            raws = await self.redis.mget([keys.job_status(i) for i in ids])
            for job_id, raw in zip(ids, raws, strict=True):
                upper = f"({job_id}"
                if raw is None:
                    continue
                record = await self._live(JobStatus.model_validate_json(raw))
                if status is None or record.status == status:
                    found.append(record)
                    if len(found) == limit:
                        return JobPage(found, job_id)
        return JobPage(found, upper[1:] if upper != "+" else None)

    async def trim_index(self, job_type: str) -> int:
        """Drop index entries older than the status TTL (their records have expired)."""
        oldest_ms = int((time.time() - self.settings.job_status_ttl_s) * 1000) & 0xFFFF_FFFF_FFFF
        removed: int = await self.redis.zremrangebylex(keys.jobs_index(job_type), "-", f"({oldest_ms:012x}")
        # A pending entry due longer ago than the TTL belongs to a job that never ended (its arq job expired).
        await self.redis.zremrangebyscore(
            keys.pending(job_type), "-inf", int((time.time() - self.settings.job_status_ttl_s) * 1000)
        )
        return removed

    # -- acting --

    async def cancel(self, job_id: str) -> JobStatus:
        """Cancel a queued or scheduled job: it never runs. NotCancellable if it runs or ended."""
        for _ in range(10):
            raw = await self.redis.get(keys.job_status(job_id))
            if raw is None:
                raise JobNotFound(job_id)
            record = JobStatus.model_validate_json(raw)
            if record.final:
                raise NotCancellable(record)
            cancelled = record.model_copy(update={"status": "cancelled", "updated_at": _now(), "next_run_at": None})
            cancelled_json = cancelled.stored()
            outcome = await self._cancel(
                keys=[keys.job_status(job_id), self.queue.queue_key, self.queue.scheduled_key,
                      JOB_KEY_PREFIX + record.run_id, IN_PROGRESS_KEY_PREFIX + record.run_id,
                      keys.order(self.queue.name, record.ordering_key) if record.ordering_key
                      else keys.job_status(job_id),
                      keys.EVENTS, keys.job_waiting(job_id), keys.job_done(job_id),
                      keys.pending(record.type), keys.parked(record.type)],
                args=[raw, cancelled_json, self.settings.job_status_ttl_s, record.run_id,
                      f"{record.priority:02d}", self.settings.events_stream_maxlen, job_id, record.type,
                      "1" if record.ordering_key else "0"],
            )  # fmt: skip
            verdict = _text(outcome[0])
            if verdict == "cancelled":
                if int(outcome[1]) and record.ordering_key:
                    await self.queue.release(_stub(record))  # the next job of its key goes
                return cancelled
            if verdict == "running":
                raise NotCancellable(record.model_copy(update={"status": "running"}))
            # "changed" or "gone": the job moved on (started, finished, retried) since we read it.
        raise NotCancellable(await self.get(job_id))

    # -- events --

    async def events(
        self,
        *,
        since: str | datetime = "$",
        group: str | None = None,
        consumer: str = "graphworks",
        count: int = 100,
        block: bool = True,
    ) -> AsyncIterator[JobEvent]:
        """The transitions after `since` (a stream id, "0" for all kept, "$" for new ones, or a
        time). With `group`: read as that consumer group's `consumer` (created at `since` if new),
        each event acknowledged once the next is asked for. `block=False` ends when caught up."""
        async for event in self._stream(since, group, consumer, count, block, heartbeat=False):
            if event is not None:
                yield event

    def feed(self, since: str) -> AsyncIterator[JobEvent | None]:
        """`events(since=...)` that also yields None each block slice nothing came (SSE keep-alives)."""
        return self._stream(since, None, "graphworks", 100, True, heartbeat=True)

    async def _stream(
        self, since: str | datetime, group: str | None, consumer: str, count: int, block: bool, *, heartbeat: bool
    ) -> AsyncIterator[JobEvent | None]:
        last = _stream_id(since)
        if group is not None:
            await self._ensure_group(group, last)
        pending_ack: str | None = None
        block_ms = int(self.block_slice_s * 1000) if block else None
        while True:
            if group is not None:
                if pending_ack is not None:
                    await self.redis.xack(keys.EVENTS, group, pending_ack)
                    pending_ack = None
                reply = await self.redis.xreadgroup(group, consumer, {keys.EVENTS: ">"}, count=count, block=block_ms)
            else:
                if last == "$":
                    last = await self._last_id()
                reply = await self.redis.xread({keys.EVENTS: last}, count=count, block=block_ms)
            entries = reply[0][1] if reply else []
            if not entries and not block:
                return
            if not entries and heartbeat:
                yield None
            for entry_id, fields in entries:
                sid = _text(entry_id)
                last = sid
                yield _event(sid, fields)
                if group is not None:
                    if pending_ack is not None:
                        await self.redis.xack(keys.EVENTS, group, pending_ack)
                    pending_ack = sid

    async def _last_id(self) -> str:
        info = await self.redis.xinfo_stream(keys.EVENTS) if await self.redis.exists(keys.EVENTS) else None
        return _text(info["last-generated-id"]) if info else "0"

    async def _ensure_group(self, group: str, start: str) -> None:
        try:
            await self.redis.xgroup_create(keys.EVENTS, group, id=start, mkstream=True)
        except aioredis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


def _now() -> datetime:
    return datetime.now(UTC)


def _stream_id(since: str | datetime) -> str:
    if isinstance(since, datetime):
        return f"{int(since.timestamp() * 1000)}-0"
    return since


def _event(stream_id: str, fields: dict[Any, Any]) -> JobEvent:
    data = {_text(k): _text(v) for k, v in fields.items()}
    return JobEvent.model_validate(
        {"stream_id": stream_id, "event": data["event"], "job_id": data["job_id"], "type": data["type"],
         "record": JobStatus.model_validate_json(data["data"])}
    )  # fmt: skip


def _stub(record: JobStatus) -> Envelope:
    """Enough of an envelope to release its ordering key (worker/queue.py `release`)."""
    return Envelope(
        id=record.id, type=record.type, payload={}, ordering_key=record.ordering_key, redrive_count=record.redrive_count
    )


async def report_progress(redis: aioredis.Redis, env: Envelope, run_id: str, progress: Progress) -> None:
    """A running job says how far it got. Rewrites its record (status `running`, `progress`)
    unless the record moved on to another attempt or ended meanwhile."""
    key = keys.job_status(env.id)
    raw = await redis.get(key)
    if raw is None:
        return
    record = JobStatus.model_validate_json(raw)
    if record.final or (run_id and record.run_id != run_id):
        return
    updated = record.model_copy(update={"status": "running", "progress": progress, "updated_at": _now()})
    await redis.set(key, updated.stored(), keepttl=True)


async def trim_job_indexes(ctx: dict[str, Any]) -> None:
    """arq cron (one worker per tick): drop index entries whose status records have expired."""
    runner = ctx["runner"]
    store = JobStatusStore(runner.queue.redis, runner.queue, runner.settings)
    for job_type in sorted(PAYLOAD_MODELS):
        await store.trim_index(job_type)
