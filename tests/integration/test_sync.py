"""sync end to end on Redis + graphsim over HTTP: pages to the deltaLink, changes between rounds,
410 restarts a full resync, one run per resource, bad input dead-lettered as validation. Contacts,
synced per folder: test_sync_contacts.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from graphworks_core import keys
from graphworks_core.envelope import Envelope
from graphworks_core.errors import ErrorClass, PayloadInvalid
from graphworks_core.payloads import Sync
from processors.parts.sync_state import SyncChange
from processors.sync import run_sync
from tests.integration.conftest import Pipeline, eventually, make_settings
from worker.context import JobContext
from worker.queue import Scheduled

USER = "adele@contoso.com"
MAIL_KEY = f"mail:{USER}:inbox"
MAIL_DELTA = f"/users/{USER}/mailFolders/inbox/messages/delta"


@pytest.fixture
def sync_pipeline(pipeline: Pipeline) -> Pipeline:
    pipeline.runner.settings = make_settings(pipeline.settings.redis_url or "", pipeline.sim, sync_page_size=10)
    return pipeline


async def _run(pipeline: Pipeline, **payload: Any) -> None:
    before = (await pipeline.completed()) + len(await pipeline.dead_letters())
    await pipeline.client.sync(**payload)

    async def done() -> bool:
        return (await pipeline.completed()) + len(await pipeline.dead_letters()) > before

    await eventually(done, what="the sync job to finish")


async def _changes(pipeline: Pipeline) -> list[SyncChange]:
    return [
        SyncChange.model_validate(json.loads(f[b"data"])) for _, f in await pipeline.redis.xrange(keys.INBOUND_STREAM)
    ]


def _requests(pipeline: Pipeline) -> list[tuple[str, str, str, int]]:
    """(method, path, which query parameter, status) of each Graph request."""
    out = []
    for r in pipeline.sim.state.requests():
        out.append((r.method, r.path, ",".join(sorted(r.query)) or "-", r.status))
    return out


async def test_mail_folder_initial_round_then_only_the_changes(sync_pipeline: Pipeline) -> None:
    store = sync_pipeline.sim.state.delta
    items = [store.upsert(MAIL_KEY, {"subject": f"m{i}"}) for i in range(25)]
    await _run(sync_pipeline, resource="mail", owner=USER)

    assert _requests(sync_pipeline) == [("GET", MAIL_DELTA, "-", 200), ("GET", MAIL_DELTA, "$skiptoken", 200),
                                        ("GET", MAIL_DELTA, "$skiptoken", 200)]  # fmt: skip
    assert all(r.headers["prefer"] == "odata.maxpagesize=10" for r in sync_pipeline.sim.state.requests())
    first = await _changes(sync_pipeline)
    assert [(c.change, c.item_id) for c in first] == [("created", i["id"]) for i in items]
    assert all(c.full_sync and c.resource == "mail" and c.item and c.version == c.item["changeKey"] for c in first)

    store.upsert(MAIL_KEY, {"id": items[3]["id"], "subject": "edited"})
    store.delete(MAIL_KEY, items[7]["id"])
    new = store.upsert(MAIL_KEY, {"subject": "new"})
    sync_pipeline.sim.state.clear_requests()
    await _run(sync_pipeline, resource="mail", owner=USER)

    assert _requests(sync_pipeline) == [("GET", MAIL_DELTA, "$deltatoken", 200)]
    second = (await _changes(sync_pipeline))[25:]
    expected = [("updated", items[3]["id"]), ("deleted", items[7]["id"]), ("created", new["id"])]
    assert [(c.change, c.item_id) for c in second] == expected
    assert not any(c.full_sync for c in second)
    assert second[0].item and second[0].item["subject"] == "edited"
    assert second[1].reason == "deleted" and second[1].item == {
        "@odata.type": "#microsoft.graph.message", "id": items[7]["id"], "@removed": {"reason": "deleted"}}  # fmt: skip
    counters = (await sync_pipeline.stats.snapshot()).processors
    assert (counters["sync.pages"], counters["sync.created"], counters["sync.updated"], counters["sync.deleted"]) == (
        4, 26, 1, 1)  # fmt: skip


async def test_410_on_the_delta_link_restarts_a_full_sync(sync_pipeline: Pipeline) -> None:
    store = sync_pipeline.sim.state.delta
    items = [store.upsert(MAIL_KEY, {"subject": f"m{i}"}) for i in range(12)]
    await _run(sync_pipeline, resource="mail", owner=USER)
    store.expire(MAIL_KEY)  # Graph dropped our state token...
    store.delete(MAIL_KEY, items[0]["id"])  # ...and meanwhile one message went and one changed
    store.upsert(MAIL_KEY, {"id": items[5]["id"], "subject": "edited"})
    sync_pipeline.sim.state.clear_requests()

    await _run(sync_pipeline, resource="mail", owner=USER)

    assert _requests(sync_pipeline) == [("GET", MAIL_DELTA, "$deltatoken", 410), ("GET", MAIL_DELTA, "-", 200),
                                        ("GET", MAIL_DELTA, "$skiptoken", 200)]  # fmt: skip
    after = (await _changes(sync_pipeline))[12:]
    # Unchanged items are not delivered again; the one the full round no longer lists is deleted.
    assert [(c.change, c.item_id, c.reason) for c in after] == [
        ("updated", items[5]["id"], None), ("deleted", items[0]["id"], "absent_after_full_sync")]  # fmt: skip
    snap = await sync_pipeline.stats.snapshot()
    assert (snap.processors["sync.full_resyncs"], snap.processors["sync.full_resyncs.mail"]) == (1, 1)
    assert await sync_pipeline.dead_letters() == []
    link = json.loads(await sync_pipeline.redis.get(keys.sync_state("-", MAIL_KEY, "link")))
    assert link["kind"] == "delta" and "$deltatoken=" in link["url"]


@pytest.mark.parametrize(
    ("payload", "collection", "path", "query"),
    [
        ({"resource": "calendar", "owner": USER, "start": "2024-01-01T00:00:00Z", "end": "2024-02-01T00:00:00Z"},
         f"events:{USER}", f"/users/{USER}/calendarView/delta",
         {"startDateTime": "2024-01-01T00:00:00Z", "endDateTime": "2024-02-01T00:00:00Z"}),
        ({"resource": "drive", "owner": "b!drive1"}, "drive:b!drive1", "/drives/b!drive1/root/delta", {}),
        ({"resource": "channel_messages", "owner": "team-1", "channel_id": "19:c@thread.tacv2"},
         "channel:team-1:19:c@thread.tacv2", "/teams/team-1/channels/19:c@thread.tacv2/messages/delta", {}),
        ({"resource": "mail", "owner": USER, "folder": "Archive"}, f"mail:{USER}:archive",
         f"/users/{USER}/mailFolders/Archive/messages/delta", {}),
    ],
)  # fmt: skip
async def test_each_resource_hits_its_delta_endpoint(
    sync_pipeline: Pipeline, payload: dict[str, Any], collection: str, path: str, query: dict[str, str]
) -> None:
    store = sync_pipeline.sim.state.delta
    window = {"start": {"dateTime": "2024-01-10T10:00:00.0000000", "timeZone": "UTC"},
              "end": {"dateTime": "2024-01-10T11:00:00.0000000", "timeZone": "UTC"}}  # fmt: skip
    first = store.upsert(collection, window if payload["resource"] == "calendar" else {})
    store.upsert(collection, window if payload["resource"] == "calendar" else {})
    await _run(sync_pipeline, **payload)
    store.delete(collection, first["id"])
    await _run(sync_pipeline, **payload)

    (initial, delta) = sync_pipeline.sim.state.requests()
    assert (initial.method, initial.path, initial.query, initial.status) == ("GET", path, query, 200)
    assert (delta.path, list(delta.query)) == (path, ["$deltatoken"])
    changes = await _changes(sync_pipeline)
    assert [c.change for c in changes] == ["created", "created", "deleted"]
    assert {c.resource for c in changes} == {payload["resource"]}


async def test_a_resource_already_syncing_is_a_no_op(sync_pipeline: Pipeline) -> None:
    sync_pipeline.sim.state.delta.upsert(MAIL_KEY, {"subject": "x"})
    await sync_pipeline.redis.set(keys.sync_state("-", MAIL_KEY, "lock"), "another-job", px=60_000)
    await _run(sync_pipeline, resource="mail", owner=USER)

    assert sync_pipeline.sim.state.requests() == []
    assert await _changes(sync_pipeline) == []
    assert (await sync_pipeline.stats.snapshot()).processors["sync.busy_noop"] == 1
    assert await sync_pipeline.redis.get(keys.sync_state("-", MAIL_KEY, "lock")) == b"another-job"


async def test_unknown_mailbox_and_bad_payloads_are_dead_lettered_as_validation(sync_pipeline: Pipeline) -> None:
    await _run(sync_pipeline, resource="mail", owner="nobody@contoso.com")
    (entry,) = await sync_pipeline.dead_letters()
    assert (entry.error_class, entry.status, entry.graph_code) == (ErrorClass.VALIDATION, None, None)
    assert "mail folder inbox of nobody@contoso.com" in (entry.message or "")
    assert "404 ErrorInvalidUser" in (entry.message or "") and "does not exist" in (entry.message or "")
    assert len(entry.attempts) == 1

    with pytest.raises(PayloadInvalid, match="owner: Field required"):
        await sync_pipeline.client.sync(resource="mail")
    with pytest.raises(PayloadInvalid, match="needs start and end"):
        await sync_pipeline.client.sync(resource="calendar", owner=USER)
    await sync_pipeline.runner.queue.put([Scheduled(Envelope(type="sync", payload={"resource": "drive"}))])
    await eventually(lambda: _count(sync_pipeline, 2), what="the second dead letter")
    assert {e.error_class for e in await sync_pipeline.dead_letters()} == {ErrorClass.VALIDATION}
    assert len(sync_pipeline.sim.state.requests()) == 1


async def _count(pipeline: Pipeline, n: int) -> bool:
    return len(await pipeline.dead_letters()) >= n


class _TickingClock:
    """Each reading is a second later: a job's budget runs out after a page or two."""

    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def now(self) -> float:
        self.t += 1.0
        return self.t


async def test_a_round_longer_than_the_job_budget_continues_in_a_new_job(sync_pipeline: Pipeline) -> None:
    store = sync_pipeline.sim.state.delta
    items = [store.upsert(MAIL_KEY, {"subject": f"m{i}"}) for i in range(45)]
    settings = make_settings(sync_pipeline.settings.redis_url or "", sync_pipeline.sim, sync_page_size=10,
                             sync_job_budget_s=1.5)  # fmt: skip
    payload = Sync(resource="mail", owner=USER)
    ctx = JobContext(sync_pipeline.runner.graph, sync_pipeline.redis, settings, _TickingClock(),
                     Envelope(type="sync", payload=payload.model_dump(mode="json")))  # fmt: skip

    first = await run_sync(ctx, payload)
    assert (first.status, first.pages) == ("continued", 1)
    # The pipeline's worker runs the continuation job from the stored link to the deltaLink.
    await eventually(lambda: _stream_len(sync_pipeline, 45), what="all 45 changes")
    await eventually(lambda: _link_kind(sync_pipeline, "delta"), what="the round to end")
    assert [c.item_id for c in await _changes(sync_pipeline)] == [i["id"] for i in items]
    queries = [",".join(r.query) or "-" for r in sync_pipeline.sim.state.requests()]
    assert queries == ["-"] + ["$skiptoken"] * 4


async def _stream_len(pipeline: Pipeline, n: int) -> bool:
    return int(await pipeline.redis.xlen(keys.INBOUND_STREAM)) >= n


async def _link_kind(pipeline: Pipeline, kind: str) -> bool:
    raw = await pipeline.redis.get(keys.sync_state("-", MAIL_KEY, "link"))
    return bool(raw) and json.loads(raw)["kind"] == kind


async def test_a_new_calendar_window_starts_a_full_round_in_it(sync_pipeline: Pipeline) -> None:
    store = sync_pipeline.sim.state.delta

    def event(day: int) -> dict[str, Any]:
        return {"start": {"dateTime": f"2024-01-{day:02d}T10:00:00.0000000", "timeZone": "UTC"},
                "end": {"dateTime": f"2024-01-{day:02d}T11:00:00.0000000", "timeZone": "UTC"}}  # fmt: skip

    early, late = store.upsert(f"events:{USER}", event(5)), store.upsert(f"events:{USER}", event(20))
    await _run(sync_pipeline, resource="calendar", owner=USER, start="2024-01-01T00:00:00Z", end="2024-02-01T00:00:00Z")
    await _run(sync_pipeline, resource="calendar", owner=USER, start="2024-01-15T00:00:00Z", end="2024-02-15T00:00:00Z")

    queries = [r.query for r in sync_pipeline.sim.state.requests()]
    assert [q.get("startDateTime") for q in queries] == ["2024-01-01T00:00:00Z", "2024-01-15T00:00:00Z"]
    changes = [(c.change, c.item_id, c.reason) for c in await _changes(sync_pipeline)]
    assert changes == [("created", early["id"], None), ("created", late["id"], None),
                       ("deleted", early["id"], "absent_after_full_sync")]  # fmt: skip


async def test_a_sync_reports_its_pages_and_counts_in_its_status_record(sync_pipeline: Pipeline) -> None:
    store = sync_pipeline.sim.state.delta
    for i in range(25):
        store.upsert(MAIL_KEY, {"subject": f"m{i}"})
    job_id = await sync_pipeline.client.sync(resource="mail", owner=USER)
    record = await sync_pipeline.client.wait(job_id, timeout_s=30)
    assert record.status == "completed" and record.result is not None
    assert (record.result["pages"], record.result["created"], record.result["full_resync"]) == (3, 25, False)
    assert record.progress is not None and (record.progress.done, record.progress.unit) == (3, "pages")
