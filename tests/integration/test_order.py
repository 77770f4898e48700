"""Jobs of equal priority start in the order they were enqueued: queue ties are broken by the
job id, which sorts in creation order (graphworks_core/envelope.py JobIds), never at random."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any

import redis.asyncio as aioredis

from graphsim.faults import Fault
from graphsim.server import SimServer
from graphworks_core import keys
from graphworks_core.clock import SystemClock
from graphworks_core.settings import load_settings
from processors.registry import JOB_TYPES
from tests.integration.conftest import Pipeline, eventually, make_settings, running_pipeline
from worker.client import GraphworksClient, JobRequest

MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "s", "body": "b"}


async def _queue_order(redis: aioredis.Redis, client: GraphworksClient) -> list[str]:
    # arq takes the lowest score first, and members of equal score in byte order: what ZRANGE gives.
    members = await redis.zrange(client.queue.queue_key, 0, -1)
    return [m.decode().split(".")[0] for m in members]


async def test_one_at_a_time_and_bulk_keep_enqueue_order(redis: aioredis.Redis, redis_url: str) -> None:
    client = GraphworksClient(redis, load_settings(redis_url=redis_url), clock=SystemClock())
    ids = [await client.send_mail(**MAIL, priority=5) for _ in range(300)]
    ids += await client.enqueue_many([JobRequest(type="mail", payload=MAIL) for _ in range(2500)])
    order = await _queue_order(redis, client)
    assert order == ids
    pairs_out_of_order = sum(1 for a, b in itertools.pairwise(order) if ids.index(a) > ids.index(b))
    assert pairs_out_of_order == 0


async def test_priority_still_goes_first(redis: aioredis.Redis, redis_url: str) -> None:
    client = GraphworksClient(redis, load_settings(redis_url=redis_url), clock=SystemClock())
    low = [await client.send_mail(**MAIL, priority=1) for _ in range(5)]
    high = [await client.send_mail(**MAIL, priority=10) for _ in range(5)]
    assert await _queue_order(redis, client) == high + low


# --- ordering keys: one chat's messages one at a time, in enqueue order, across retries ------


def _posted_in_order(p: Pipeline) -> dict[str, list[str]]:
    """Per chat, the contents Graph accepted, in the order it accepted them."""
    accepted: dict[str, list[str]] = {}
    for r in p.sim.state.requests():
        if r.method == "POST" and r.path.startswith("/chats/") and r.status == 201:
            accepted.setdefault(r.path.split("/")[2], []).append(r.body["body"]["content"])
    return accepted


async def test_each_chat_receives_its_messages_in_order_through_retries(pipeline: Pipeline) -> None:
    # 503s with Retry-After: 0 retry at once (no clock to move); without ordering keys a chat's
    # second message overtakes its first while the first waits for its retry.
    pipeline.sim.state.add_fault(Fault(method="POST", path="/chats/*/messages", status=503, retry_after="0", times=24))
    chats = [f"19:order-{c}" for c in range(8)]
    jobs = [
        JobRequest(type="teams_message", payload={"chat_id": chat, "content": f"m{i}"})
        for i in range(8)
        for chat in chats
    ]
    await pipeline.client.enqueue_many(jobs)
    await eventually(lambda: _completed(pipeline, 64), what="64 messages posted")
    assert (await pipeline.stats.snapshot()).retried >= 24
    assert _posted_in_order(pipeline) == {chat: [f"m{i}" for i in range(8)] for chat in chats}


async def test_a_dead_lettered_head_lets_the_next_go_and_its_entry_says_which(pipeline: Pipeline) -> None:
    pipeline.sim.state.add_fault(Fault(method="POST", path="/chats/19:dl/messages", status=400, times=1))
    first = await pipeline.client.send_teams_message(chat_id="19:dl", content="m0")
    second = await pipeline.client.send_teams_message(chat_id="19:dl", content="m1")
    third = await pipeline.client.send_teams_message(chat_id="19:dl", content="m2")
    await eventually(lambda: _completed(pipeline, 2), what="the two after the head")
    [entry] = await pipeline.dead_letters()
    assert (entry.job_id, entry.ordering_key, entry.released_next) == (first, "chat:19:dl", second)
    assert _posted_in_order(pipeline) == {"19:dl": ["m1", "m2"]}
    assert await pipeline.redis.llen(keys.order("default", "chat:19:dl")) == 0
    assert third  # the last one released nothing behind it


async def test_other_keys_run_alongside_a_busy_one(redis: aioredis.Redis, redis_url: str, graphsim: SimServer) -> None:
    started: list[str] = []
    gates: dict[str, asyncio.Event] = {}

    async def blocking(ctx: Any, payload: Any) -> None:
        started.append(payload.subject)
        await gates.setdefault(payload.subject, asyncio.Event()).wait()

    async with running_pipeline(redis, graphsim, make_settings(redis_url, graphsim)) as p:
        p.runner.job_types = {"mail": dataclasses.replace(JOB_TYPES["mail"], run=blocking)}
        for subject, key in (("a1", "A"), ("a2", "A"), ("b1", "B"), ("none", None)):
            await p.client.send_mail(**{**MAIL, "subject": subject}, ordering_key=key)
        await eventually(lambda: _same(sorted(started), ["a1", "b1", "none"]), what="one job per key, and the unkeyed")
        assert "a2" not in started  # waits for a1 however free the worker is
        gates.setdefault("a1", asyncio.Event()).set()
        await eventually(lambda: _same(started[-1:], ["a2"]), what="a2 once a1 is done")
        for g in ("a2", "b1", "none"):
            gates.setdefault(g, asyncio.Event()).set()
        await eventually(lambda: _completed(p, 4), what="all four")


async def test_the_key_is_settable_on_any_job_and_defaults_for_teams(redis: aioredis.Redis, redis_url: str) -> None:
    client = GraphworksClient(redis, load_settings(redis_url=redis_url), clock=SystemClock())
    await client.send_teams_message(chat_id="19:x", content="a")
    await client.send_teams_message(team_id="t", channel_id="19:c", content="b")
    await client.send_mail(**MAIL, ordering_key="invoices")
    await client.send_mail(**MAIL, ordering_key="invoices")
    await client.enqueue_many([JobRequest(type="mail", payload=MAIL, ordering_key="invoices")])
    assert await redis.llen(keys.order("default", "chat:19:x")) == 1
    assert await redis.llen(keys.order("default", "channel:t:19:c")) == 1
    assert await redis.llen(keys.order("default", "invoices")) == 3
    assert await redis.zcard(client.queue.queue_key) == 3  # each key's head is queued; the rest wait


async def _completed(p: Pipeline, n: int) -> bool:
    return await p.completed() == n


async def _same(got: list[str], want: list[str]) -> bool:
    return got == want
