"""A sync of 10,000 changes over 100 pages, its worker SIGKILLed halfway: a second worker resumes
from the last committed page and the stream holds every change exactly once."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from graphsim.delta_resources import default_contacts_folder
from graphsim.faults import Fault
from graphsim.server import SimServer
from graphworks.wiring import build_runner
from graphworks_core import keys
from graphworks_core.clock import SystemClock
from graphworks_core.envelope import Envelope
from graphworks_core.payloads import Sync
from processors.parts.sync_state import SyncChange
from processors.sync import run_sync
from ratelimits.base import NoLimit
from tests.integration.conftest import eventually, make_settings
from tests.integration.test_worker_process import graphworks, worker_env
from worker.client import GraphworksClient
from worker.context import JobContext

pytestmark = pytest.mark.slow

USER = "adele@contoso.com"
COLLECTION = f"contacts:{USER}:{default_contacts_folder(USER)}"
PAYLOAD = {"resource": "contacts", "owner": USER}
LINK = keys.sync_state("-", f"contacts:{USER}", "link")


async def _stream(redis: aioredis.Redis) -> list[SyncChange]:
    return [SyncChange.model_validate_json(f[b"data"]) for _, f in await redis.xrange(keys.INBOUND_STREAM)]


async def test_killed_sync_resumes_from_its_last_page_and_delivers_each_change_once(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer, tmp_path: Path
) -> None:
    store = graphsim.state.delta
    # Round 1 (in-process): 2,000 contacts.
    existing = [store.upsert(COLLECTION, {"displayName": f"c{i}"})["id"] for i in range(2000)]
    settings = make_settings(redis_url, graphsim, sync_page_size=100)
    runner = build_runner(settings, redis, limiter=NoLimit())
    ctx = JobContext(runner.graph, redis, settings, SystemClock(), Envelope(type="sync", payload=PAYLOAD))
    assert (await run_sync(ctx, Sync.model_validate(PAYLOAD))).created == 2000
    await runner.graph.close()

    # Between rounds: 1,000 updated, 1,000 deleted, 8,000 created = 10,000 changes = 100 pages.
    updated, deleted = existing[:1000], existing[1000:]
    for item_id in updated:
        store.upsert(COLLECTION, {"id": item_id, "displayName": "edited"})
    for item_id in deleted:
        store.delete(COLLECTION, item_id)
    created = [store.upsert(COLLECTION, {"displayName": f"n{i}"})["id"] for i in range(8000)]
    graphsim.state.clear_requests()

    # The dead worker's job runs again 4.5 s after it started (job timeout + margin); a 3.5 s budget
    # keeps the round in that one job. Outlook's per-mailbox pacing (16 requests/s) is off: it is
    # not what this test is about and would make it take 10 s longer.
    config = tmp_path / "graphworks.toml"
    config.write_text("[limits]\nenabled = false\n")
    env = worker_env(redis_url, graphsim, SYNC_PAGE_SIZE="100", SYNC_JOB_BUDGET_S="3.5", GRAPHWORKS_CONFIG=str(config))
    async with GraphworksClient(redis, settings) as client:
        await client.sync(**PAYLOAD)
    # Pages take 10+ ms each in graphsim, so the test can stop the worker halfway.
    graphsim.state.add_fault(Fault(method="GET", path="/users/*/contactFolders/*/contacts/delta", kind="slow",
                                   delay_s=0.01, times=None))  # fmt: skip
    first = graphworks("worker", env=env)
    try:
        await eventually(lambda: _pages_at_least(redis, 50), timeout_s=30, what="50 committed pages")
    except AssertionError:
        first.kill()
        raise AssertionError(first.communicate(timeout=10)[1][-3000:]) from None
    else:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    killed_at = time.time()
    link_at_kill = json.loads(await redis.get(LINK))
    assert link_at_kill["kind"] == "next" and 50 <= link_at_kill["pages"] < 100, link_at_kill
    graphsim.state.clear_faults()

    second = graphworks("worker", "--burst", env=env)
    _, err = await asyncio.to_thread(second.communicate, timeout=60)
    assert second.returncode == 0, err

    # It resumed from the last committed page, not from the start of the round.
    after = [r for r in graphsim.state.requests() if r.at > killed_at]
    assert after[0].query == {"$skiptoken": link_at_kill["url"].split("$skiptoken=", 1)[1].replace("%3D", "=")}
    final = json.loads(await redis.get(LINK))
    assert final["kind"] == "delta" and final["pages"] == 100

    changes = (await _stream(redis))[2000:]
    assert len(changes) == 10_000
    assert Counter(c.item_id for c in changes).most_common(1)[0][1] == 1, "a change was delivered twice"
    kinds = {c.item_id: c.change for c in changes}
    assert kinds == {**dict.fromkeys(updated, "updated"), **dict.fromkeys(deleted, "deleted"),
                     **dict.fromkeys(created, "created")}  # fmt: skip

    # Replaying the whole stream gives exactly what Graph holds now.
    state: dict[str, str | None] = {}
    for change in await _stream(redis):
        if change.change == "deleted":
            state.pop(change.item_id)
        else:
            state[change.item_id] = change.version
    assert state == {i["id"]: i["changeKey"] for i in store.items(COLLECTION)}
    assert (await redis.hget(keys.PROCESSOR_STATS, "sync.pages")) == b"120"


async def _pages_at_least(redis: aioredis.Redis, n: int) -> bool:
    raw = await redis.get(LINK)
    link = json.loads(raw) if raw else {}
    return link.get("kind") == "next" and int(link.get("pages", 0)) >= n
