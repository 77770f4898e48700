"""Queue semantics on a real Redis: priority, starvation bound, idempotency, deferral, poison, redrive."""

from __future__ import annotations

import time

import pytest

from graphsim.faults import Fault
from graphworks_core import keys
from graphworks_core.errors import ErrorClass
from tests.integration.conftest import Pipeline, eventually
from worker.arq_adapter import JOB_KEY_PREFIX as job_key_prefix
from worker.client import JobRequest
from worker.redrive import redrive_one

MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "s", "body": "b"}


async def _next_for_arq(p: Pipeline) -> str:
    """The job arq's worker takes next: the lowest score due now (what its poll loop reads)."""
    ids = await p.redis.zrangebyscore(p.runner.queue.queue_key, "-inf", int(time.time() * 1000), start=0, num=1)
    return str(ids[0].decode()).split(".")[0]


async def test_priority_10_overtakes_10000_pending_priority_5_jobs(pipeline: Pipeline) -> None:
    pipeline.worker.allow_pick_jobs = False  # look at the order without running anything
    reqs = [JobRequest(type="mail", payload=MAIL) for _ in range(10_000)]
    await pipeline.client.enqueue_many(reqs)
    urgent = await pipeline.client.send_mail(**MAIL, priority=10)
    assert await pipeline.redis.zcard(pipeline.runner.queue.queue_key) == 10_001
    assert await _next_for_arq(pipeline) == urgent


async def test_old_low_priority_job_is_not_starved(pipeline: Pipeline) -> None:
    pipeline.worker.allow_pick_jobs = False
    step = pipeline.settings.queue_priority_step_s
    queue = pipeline.runner.queue
    # A priority-1 job that has waited 9 steps beats a fresh priority-10 job.
    old = await pipeline.client.send_mail(**MAIL, priority=1)
    await pipeline.redis.zincrby(queue.queue_key, -9 * step * 1000 - 1, f"{old}.0.0")
    await pipeline.client.send_mail(**MAIL, priority=10)
    assert await _next_for_arq(pipeline) == old


async def _scheduled_ids(p: Pipeline) -> set[str]:
    """Job ids in the scheduled zset (members `PP:<arq job id>`, the arq id `<job id>.<...>`)."""
    return {m.split(":", 1)[1].split(".")[0] for m, _ in await p.scheduled()}


async def _queued_ids(p: Pipeline) -> set[str]:
    """Job ids in the queue zset (arq job ids `<job id>.<...>`), due or not."""
    return {m.decode().split(".")[0] for m in await p.redis.zrange(p.runner.queue.queue_key, 0, -1)}


async def test_idempotency_key_returns_the_first_job_while_pending_and_after_done(pipeline: Pipeline) -> None:
    pipeline.worker.allow_pick_jobs = False  # no worker can take it: the second enqueue finds it pending
    first = await pipeline.client.send_mail(**MAIL, idempotency_key="order-42")
    again = await pipeline.client.send_mail(**MAIL, idempotency_key="order-42")
    assert again == first
    assert await _queued_ids(pipeline) == {first}  # one job, still waiting in the queue
    assert pipeline.graph_requests() == [] and await pipeline.completed() == 0
    pipeline.worker.allow_pick_jobs = True
    await eventually(lambda: _eq(pipeline.completed(), 1), what="completion")
    after = await pipeline.client.send_mail(**MAIL, idempotency_key="order-42")
    assert after == first
    assert await _queued_ids(pipeline) == set()  # nothing new enqueued after it was done
    assert len(pipeline.graph_requests()) == 1


async def test_deferred_job_waits_for_its_time(pipeline: Pipeline) -> None:
    job_id = await pipeline.client.send_mail(**MAIL, defer_by=30)
    ((_, due),) = await pipeline.scheduled()
    assert due == pytest.approx(pipeline.clock.now() + 30, abs=0.001)  # stored in ms
    assert await _scheduled_ids(pipeline) == {job_id} and await _queued_ids(pipeline) == set()
    pipeline.clock.advance(29.9)
    # A promotion at this clock, ours, finished before the checks (the worker's promoter may run
    # too, on the same clock): the job is still scheduled, not in the queue, and nothing was sent.
    await pipeline.runner.queue.promote_due()
    assert await _scheduled_ids(pipeline) == {job_id}, "promoted before its time"
    assert await _queued_ids(pipeline) == set()
    assert pipeline.graph_requests() == []
    pipeline.clock.advance(0.1)
    await eventually(lambda: _eq(pipeline.completed(), 1), what="the deferred job to run")
    assert await _scheduled_ids(pipeline) == set()


async def test_poison_job_is_dead_lettered_as_undecodable_and_the_worker_goes_on(pipeline: Pipeline) -> None:
    queue = pipeline.runner.queue
    await pipeline.redis.set(job_key_prefix + "poison1", b"\x80\x04not json at all")
    await pipeline.redis.zadd(queue.queue_key, {"poison1": 1})  # arq skips a score of 0
    await pipeline.client.send_mail(**MAIL)
    await eventually(lambda: _eq(pipeline.completed(), 1), what="the good job after the poison one")
    (entry,) = await pipeline.dead_letters()
    assert entry.error_class == ErrorClass.UNDECODABLE and entry.job_id == "poison1"
    assert isinstance(entry.payload, str) and "not json at all" in entry.payload
    assert await pipeline.redis.zcard(queue.queue_key) == 0


async def test_attempt_that_killed_workers_repeatedly_is_dead_lettered(pipeline: Pipeline) -> None:
    from graphworks_core.envelope import Envelope, encode

    env = Envelope(type="mail", payload=MAIL)
    runs = pipeline.settings.worker_max_job_runs
    assert await pipeline.runner.run(encode(env), job_try=runs + 1) == "dead_lettered"
    (entry,) = await pipeline.dead_letters()
    assert entry.error_class == ErrorClass.UNKNOWN and "died" in entry.reason


async def test_invalid_payload_in_queue_is_dead_lettered_as_validation(pipeline: Pipeline) -> None:
    from graphworks_core.envelope import Envelope, encode

    bad = Envelope(type="mail", payload={"mailbox": "x"})
    assert await pipeline.runner.run(encode(bad)) == "dead_lettered"
    (entry,) = await pipeline.dead_letters()
    assert entry.error_class == ErrorClass.VALIDATION and "to" in (entry.message or "")
    assert pipeline.graph_requests() == []


async def test_redriven_entry_succeeds_once_graph_recovers_and_keeps_its_history(pipeline: Pipeline) -> None:
    pipeline.sim.state.add_fault(Fault(method="POST", path="/users/*/sendMail", status=400))
    job_id = await pipeline.client.send_mail(**MAIL, idempotency_key="k1")
    await eventually(lambda: _nonempty(pipeline.dead_letters()), what="dead-letter")

    result = await redrive_one(pipeline.runner.dlq, pipeline.runner.queue, job_id)
    assert result.redriven == [job_id]
    await eventually(lambda: _eq(pipeline.completed(), 1), what="the redriven job to complete")
    assert await pipeline.dead_letters() == []
    assert [r.status for r in pipeline.graph_requests()] == [400, 202]
    snap = await pipeline.stats.snapshot()
    assert (snap.completed, snap.dead_lettered) == (1, 1)
    held = await pipeline.redis.get(keys.idempotency("k1"))  # the job id, then its request's fingerprint
    assert held.split(b" ")[0] == job_id.encode()


async def test_redriven_job_that_fails_again_returns_with_all_attempts(pipeline: Pipeline) -> None:
    pipeline.sim.state.add_fault(Fault(method="POST", path="/users/*/sendMail", status=404, times=None))
    job_id = await pipeline.client.send_mail(**MAIL)
    await eventually(lambda: _nonempty(pipeline.dead_letters()), what="dead-letter")
    await redrive_one(pipeline.runner.dlq, pipeline.runner.queue, job_id)
    await eventually(lambda: _redriven_back(pipeline), what="the second dead-letter")
    (entry,) = await pipeline.dead_letters()
    assert entry.redrive_count == 1 and len(entry.attempts) == 2


async def _redriven_back(p: Pipeline) -> bool:
    entries = await p.dead_letters()
    return bool(entries) and entries[0].redrive_count == 1


async def _eq(value: object, expected: int) -> bool:
    return await value == expected  # type: ignore[misc]


async def _nonempty(value: object) -> bool:
    return bool(await value)  # type: ignore[misc]


async def test_runner_error_makes_arq_run_the_job_again_instead_of_dropping_it(pipeline: Pipeline) -> None:
    pipeline.sim.state.add_fault(Fault(method="POST", path="/users/*/sendMail", status=503))
    real_put = pipeline.runner.queue.put
    calls = {"n": 0}

    async def flaky_put(jobs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("redis went away while scheduling the retry")
        return await real_put(jobs)

    await pipeline.client.send_mail(**MAIL)  # enqueued before the fault in put is armed
    pipeline.runner.queue.put = flaky_put  # type: ignore[method-assign]
    await eventually(lambda: _eq(pipeline.completed(), 1), timeout_s=15, what="the re-run to complete")
    assert [r.status for r in pipeline.graph_requests()] == [503, 202]
    assert await pipeline.dead_letters() == []
