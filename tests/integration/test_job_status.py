"""Following a job: its status record at each transition, its result, waiting, cancelling, listing
and the events stream, on a real Redis with graphsim over HTTP and an arq worker."""

from __future__ import annotations

import asyncio
import time

import pytest

from graphsim.faults import Fault
from graphworks_core import keys
from tests.integration.conftest import Pipeline, eventually
from worker.client import IdempotencyConflict, JobNotFound, JobRequest, NotCancellable, WaitTimedOut
from worker.redrive import redrive_one

MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "s", "body": "b"}


async def test_a_sent_teams_message_has_graphs_message_id_in_its_result(pipeline: Pipeline) -> None:
    job_id = await pipeline.client.send_teams_message(chat_id="19:abc", content="hello")
    record = await pipeline.client.wait(job_id, timeout_s=15)
    assert record.status == "completed" and record.type == "teams_message"
    assert record.result is not None
    stored = pipeline.sim.state.chat_message("19:abc", record.result["id"])
    assert stored is not None and "hello" in stored["body"]["content"]
    assert record.result["chat_id"] == "19:abc"  # webUrl: Graph answers null for chat messages
    assert record.ordering_key == "chat:19:abc" and record.attempts == []


async def test_a_queued_job_reads_queued_then_running_then_completed(pipeline: Pipeline) -> None:
    pipeline.worker.allow_pick_jobs = False
    job_id = await pipeline.client.send_mail(**MAIL, priority=8, idempotency_key="k-1")
    record = await pipeline.client.status(job_id)
    assert (record.status, record.priority, record.idempotency_key) == ("queued", 8, "k-1")
    # Graph holds the request: the job is running, as its in-progress key says.
    pipeline.sim.state.add_fault(Fault(method="POST", path="/users/*/sendMail", kind="slow", delay_s=1.5))
    pipeline.worker.allow_pick_jobs = True

    async def running() -> bool:
        return (await pipeline.client.status(job_id)).status == "running"

    await eventually(running, what="the job to show as running")
    final = await pipeline.client.wait(job_id, timeout_s=15)
    assert final.status == "completed" and final.result is not None
    assert final.result["mailbox"] == "ops@contoso.com" and final.result["request_id"]


async def test_a_retry_is_scheduled_with_its_attempt_then_a_dead_letter_names_its_entry(pipeline: Pipeline) -> None:
    pipeline.sim.state.add_fault(Fault(method="POST", path="/chats/*/messages", status=503, times=1))
    job_id = await pipeline.client.send_teams_message(chat_id="19:r", content="x")
    await pipeline.advance_to_next_retry()
    record = await pipeline.client.wait(job_id, timeout_s=15)
    assert record.status == "completed"
    assert [(a.error_class, a.status) for a in record.attempts] == [("unavailable", 503)]

    pipeline.sim.state.add_fault(Fault(method="POST", path="/chats/*/messages", status=400, graph_code="BadRequest"))
    bad = await pipeline.client.send_teams_message(chat_id="19:r", content="y")
    dead = await pipeline.client.wait(bad, timeout_s=15)
    assert dead.status == "dead_lettered" and dead.dead_letter_id
    assert dead.attempts[-1].status == 400 and dead.attempts[-1].graph_code == "BadRequest"
    entry = await pipeline.runner.dlq.get(dead.dead_letter_id)
    assert entry is not None and entry.job_id == bad

    await redrive_one(pipeline.runner.dlq, pipeline.runner.queue, dead.dead_letter_id)
    again = await pipeline.client.wait(bad, timeout_s=15)
    assert again.status == "completed" and again.redrive_count == 1


async def test_waiting_costs_no_polling_and_wakes_every_waiter(pipeline: Pipeline) -> None:
    pipeline.worker.allow_pick_jobs = False
    job_id = await pipeline.client.send_mail(**MAIL)
    waiters = [asyncio.create_task(pipeline.client.wait(job_id, timeout_s=20)) for _ in range(3)]
    await eventually(lambda: _blocked_clients(pipeline, 3), what="three waiters blocked on the job's key")
    before = await _commands(pipeline)
    await asyncio.sleep(0.5)  # real time on purpose: what do blocked waiters cost meanwhile?
    after = await _commands(pipeline)
    # Still blocked in their first BLMOVE: no read of the record or the list meanwhile (a polling
    # loop would be dozens). The worker's own polling uses other commands.
    assert (after["blmove"] - before["blmove"], after["get"] - before["get"]) == (0, 0)
    pipeline.worker.allow_pick_jobs = True
    started = time.monotonic()
    records = await asyncio.gather(*waiters)
    assert {r.status for r in records} == {"completed"}
    # Woken by the job's end, not by their block slice running out.
    assert time.monotonic() - started < pipeline.client.jobs.block_slice_s


async def _blocked_clients(p: Pipeline, n: int) -> bool:
    return int((await p.redis.info("clients"))["blocked_clients"]) >= n


async def _commands(p: Pipeline) -> dict[str, int]:
    stats = await p.redis.info("commandstats")
    return {name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("blmove", "get")}


async def test_wait_times_out_with_the_current_record(pipeline: Pipeline) -> None:
    pipeline.worker.allow_pick_jobs = False
    job_id = await pipeline.client.send_mail(**MAIL)
    with pytest.raises(WaitTimedOut) as caught:
        await pipeline.client.wait(job_id, timeout_s=0.3)
    assert caught.value.record.status == "queued"


async def test_a_cancelled_deferred_job_never_reaches_graph_and_a_completed_one_cannot_be(pipeline: Pipeline) -> None:
    job_id = await pipeline.client.send_teams_message(chat_id="19:c", content="not this", defer_by=60)
    assert (await pipeline.client.status(job_id)).status == "scheduled"
    cancelled = await pipeline.client.cancel(job_id)
    assert cancelled.status == "cancelled"
    assert (await pipeline.client.wait(job_id, timeout_s=1)).status == "cancelled"
    behind = await pipeline.client.send_teams_message(chat_id="19:c", content="this one")
    pipeline.clock.advance(120)
    done = await pipeline.client.wait(behind, timeout_s=15)
    assert done.status == "completed"
    await pipeline.runner.queue.promote_due()
    sent = [r.body for r in pipeline.graph_requests() if r.path.endswith("/messages")]
    assert [b["body"]["content"] for b in sent] == ["this one"]
    with pytest.raises(NotCancellable) as caught:
        await pipeline.client.cancel(behind)
    assert caught.value.record.status == "completed"
    with pytest.raises(JobNotFound):
        await pipeline.client.cancel("0" * 32)


async def test_cancelling_a_job_waiting_behind_its_ordering_key_leaves_the_line_moving(pipeline: Pipeline) -> None:
    pipeline.worker.allow_pick_jobs = False
    ids = [await pipeline.client.send_teams_message(chat_id="19:o", content=f"m{i}") for i in range(3)]
    await pipeline.client.cancel(ids[1])  # waiting in the line
    await pipeline.client.cancel(ids[0])  # the head: the next one is queued
    pipeline.worker.allow_pick_jobs = True
    assert (await pipeline.client.wait(ids[2], timeout_s=15)).status == "completed"
    assert [r.body["body"]["content"] for r in pipeline.graph_requests()] == ["m2"]


async def test_a_running_job_cannot_be_cancelled(pipeline: Pipeline) -> None:
    pipeline.sim.state.add_fault(Fault(method="POST", path="/users/*/sendMail", kind="slow", delay_s=1.0))
    job_id = await pipeline.client.send_mail(**MAIL)

    async def running() -> bool:
        return (await pipeline.client.status(job_id)).status == "running"

    await eventually(running, what="the job to run")
    with pytest.raises(NotCancellable) as caught:
        await pipeline.client.cancel(job_id)
    assert caught.value.record.status == "running"
    assert (await pipeline.client.wait(job_id, timeout_s=15)).status == "completed"


async def test_the_events_stream_has_each_outcome_once_and_a_group_can_read_it(pipeline: Pipeline) -> None:
    stream = pipeline.client.events(since="0", group="billing", consumer="c1")
    pipeline.sim.state.add_fault(Fault(method="POST", path="/users/*/sendMail", status=400, times=1))
    ids = [await pipeline.client.send_mail(**MAIL) for _ in range(5)]
    for job_id in ids:
        await pipeline.client.wait(job_id, timeout_s=15)
    seen: dict[str, list[str]] = {}
    async for event in stream:
        seen.setdefault(event.job_id, []).append(event.event)
        assert event.record.id == event.job_id
        if sum(len(v) for v in seen.values()) == 5:
            break
    assert sorted(v[0] for v in seen.values()) == ["completed"] * 4 + ["dead_lettered"]
    groups = await pipeline.redis.xinfo_groups(keys.EVENTS)
    assert groups[0]["name"] in (b"billing", "billing")


async def test_jobs_list_newest_first_by_status_with_a_cursor(pipeline: Pipeline) -> None:
    pipeline.worker.allow_pick_jobs = False
    ids = await pipeline.client.enqueue_many([JobRequest(type="mail", payload=MAIL) for _ in range(7)])
    await pipeline.client.cancel(ids[3])
    first = await pipeline.client.list_jobs("mail", limit=4)
    assert [r.id for r in first.jobs] == ids[::-1][:4] and first.next_cursor
    rest = await pipeline.client.list_jobs("mail", limit=4, cursor=first.next_cursor)
    assert [r.id for r in rest.jobs] == ids[::-1][4:]
    cancelled = await pipeline.client.list_jobs("mail", status="cancelled")
    assert [r.id for r in cancelled.jobs] == [ids[3]]


async def test_an_idempotency_key_reused_with_another_payload_is_a_conflict(pipeline: Pipeline) -> None:
    pipeline.worker.allow_pick_jobs = False
    first = await pipeline.client.submit(JobRequest(type="mail", payload=MAIL, idempotency_key="o-1"))
    same = await pipeline.client.submit(JobRequest(type="mail", payload=MAIL, idempotency_key="o-1"))
    assert (first.duplicate, same.duplicate, same.id, same.status) == (False, True, first.id, "queued")
    with pytest.raises(IdempotencyConflict) as caught:
        other = {**MAIL, "subject": "other"}
        await pipeline.client.submit(JobRequest(type="mail", payload=other, idempotency_key="o-1"))
    assert caught.value.job_id == first.id
    assert (await pipeline.client.status(first.id)).status == "queued"


async def test_a_1000_job_run_leaves_one_event_per_outcome(pipeline: Pipeline) -> None:
    bad = "refused@contoso.com"
    pipeline.sim.state.add_fault(Fault(method="POST", path=f"/users/{bad}/sendMail", status=400, times=None))
    requests = [
        JobRequest(type="mail", payload={**MAIL, "mailbox": bad if i % 20 == 0 else f"box{i % 7}@contoso.com"})
        for i in range(1000)
    ]
    ids = await pipeline.client.enqueue_many(requests)

    async def all_ended() -> bool:
        snap = await pipeline.stats.snapshot()
        return snap.completed + snap.dead_lettered == 1000

    await eventually(all_ended, timeout_s=120, what="1000 jobs to end")
    events: dict[str, list[str]] = {}
    async for event in pipeline.client.jobs.events(since="0", block=False):
        events.setdefault(event.job_id, []).append(event.event)
    assert set(events) == set(ids)
    completed = [j for j, e in events.items() if e == ["completed"]]
    dead = [j for j, e in events.items() if e == ["dead_lettered"]]
    snap = await pipeline.stats.snapshot()
    assert (len(completed), len(dead)) == (snap.completed, snap.dead_lettered) == (950, 50)
    assert len(await pipeline.dead_letters()) == 50


async def test_the_jobs_index_drops_entries_past_the_status_ttl(pipeline: Pipeline) -> None:
    pipeline.worker.allow_pick_jobs = False
    fresh = await pipeline.client.send_mail(**MAIL)
    ttl_ms = pipeline.settings.job_status_ttl_s * 1000
    stale = f"{int(time.time() * 1000) - ttl_ms - 60_000:012x}" + "0" * 20  # made before the TTL began
    await pipeline.redis.zadd(keys.jobs_index("mail"), {stale: 0})
    assert await pipeline.client.jobs.trim_index("mail") == 1
    assert [m.decode() for m in await pipeline.redis.zrange(keys.jobs_index("mail"), 0, -1)] == [fresh]


async def test_a_batch_with_a_conflicting_key_stores_nothing(pipeline: Pipeline) -> None:
    pipeline.worker.allow_pick_jobs = False
    first = await pipeline.client.submit(JobRequest(type="mail", payload=MAIL, idempotency_key="b-1"))
    batch = [
        JobRequest(type="mail", payload=MAIL, idempotency_key="b-2"),
        JobRequest(type="mail", payload={**MAIL, "subject": "changed"}, idempotency_key="b-1"),
    ]
    with pytest.raises(IdempotencyConflict):
        await pipeline.client.submit_many(batch)
    assert not await pipeline.redis.exists(keys.idempotency("b-2"))
    assert [m.decode() for m in await pipeline.redis.zrange(keys.jobs_index("mail"), 0, -1)] == [first.id]
