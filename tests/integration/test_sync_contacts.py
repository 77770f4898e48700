"""Contacts sync per folder, end to end (client -> worker -> graphsim over HTTP -> the Redis Stream sink):
only the documented `/users/{id}/contactFolders/{id}/contacts/delta` (graphsim answers 400 on
`/users/{id}/contacts/delta`), the default folder looked up once and kept with the sync state, a 410
restarting a full round on the folder's path, and a named `folder`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from graphsim.delta_resources import default_contacts_folder
from graphworks_core import keys
from graphworks_core.errors import ErrorClass
from processors.parts.sync_state import LinkRecord, SyncChange
from tests.integration.conftest import Pipeline, eventually, make_settings

USER = "adele@contoso.com"
FOLDER = default_contacts_folder(USER)
COLLECTION = f"contacts:{USER}:{FOLDER}"
STATE_KEY = f"contacts:{USER}"  # the default folder's sync state
DELTA = f"/users/{USER}/contactFolders/{FOLDER}/contacts/delta"
LOOKUP = [("GET", f"/users/{USER}/contacts", "$select,$top", 200)]


@pytest.fixture
def sync_pipeline(pipeline: Pipeline) -> Pipeline:
    pipeline.runner.settings = make_settings(pipeline.settings.redis_url or "", pipeline.sim, sync_page_size=10)
    return pipeline


async def _run(pipeline: Pipeline, **payload: Any) -> None:
    before = (await pipeline.completed()) + len(await pipeline.dead_letters())
    await pipeline.client.sync(resource="contacts", owner=USER, **payload)

    async def done() -> bool:
        return (await pipeline.completed()) + len(await pipeline.dead_letters()) > before

    await eventually(done, what="the sync job to finish")


async def _changes(pipeline: Pipeline) -> list[SyncChange]:
    return [
        SyncChange.model_validate(json.loads(f[b"data"])) for _, f in await pipeline.redis.xrange(keys.INBOUND_STREAM)
    ]


def _requests(pipeline: Pipeline) -> list[tuple[str, str, str, int]]:
    """(method, path, query parameter names, status) of each Graph request, then forget them."""
    out = [(r.method, r.path, ",".join(sorted(r.query)) or "-", r.status) for r in pipeline.sim.state.requests()]
    pipeline.sim.state.clear_requests()
    return out


async def _kept_folder(pipeline: Pipeline, key: str = STATE_KEY) -> str | None:
    raw = await pipeline.redis.get(keys.sync_state("-", key, "folder"))
    return raw.decode() if raw else None


async def test_contacts_sync_the_default_folder_by_its_documented_delta_looked_up_once(
    sync_pipeline: Pipeline,
) -> None:
    store = sync_pipeline.sim.state.delta
    items = [store.upsert(COLLECTION, {"displayName": f"c{i}"}) for i in range(12)]
    await _run(sync_pipeline)

    assert _requests(sync_pipeline) == [*LOOKUP, ("GET", DELTA, "-", 200), ("GET", DELTA, "$skiptoken", 200)]
    first = await _changes(sync_pipeline)
    assert [(c.change, c.item_id) for c in first] == [("created", i["id"]) for i in items]
    assert all(c.resource == "contacts" and c.resource_key == STATE_KEY and c.full_sync for c in first)
    assert {c.item["parentFolderId"] for c in first if c.item} == {FOLDER}
    assert await _kept_folder(sync_pipeline) == FOLDER, "kept with the sync state"

    store.upsert(COLLECTION, {"id": items[2]["id"], "displayName": "edited"})
    store.delete(COLLECTION, items[4]["id"])
    new = store.upsert(COLLECTION, {"displayName": "new"})
    await _run(sync_pipeline)

    assert _requests(sync_pipeline) == [("GET", DELTA, "$deltatoken", 200)], "no second lookup"
    second = (await _changes(sync_pipeline))[12:]
    assert [(c.change, c.item_id) for c in second] == [
        ("updated", items[2]["id"]), ("deleted", items[4]["id"]), ("created", new["id"])]  # fmt: skip
    assert not any(c.full_sync for c in second)
    assert await sync_pipeline.dead_letters() == []


async def test_410_on_the_folder_delta_restarts_a_full_round_on_the_same_path(sync_pipeline: Pipeline) -> None:
    store = sync_pipeline.sim.state.delta
    items = [store.upsert(COLLECTION, {"displayName": f"c{i}"}) for i in range(12)]
    await _run(sync_pipeline)
    _requests(sync_pipeline)
    store.expire(COLLECTION)  # Graph dropped our state token; meanwhile one contact went, one changed
    store.delete(COLLECTION, items[0]["id"])
    store.upsert(COLLECTION, {"id": items[5]["id"], "displayName": "edited"})

    await _run(sync_pipeline)

    assert _requests(sync_pipeline) == [("GET", DELTA, "$deltatoken", 410), ("GET", DELTA, "-", 200),
                                        ("GET", DELTA, "$skiptoken", 200)]  # fmt: skip
    after = (await _changes(sync_pipeline))[12:]
    assert [(c.change, c.item_id, c.reason) for c in after] == [
        ("updated", items[5]["id"], None), ("deleted", items[0]["id"], "absent_after_full_sync")]  # fmt: skip
    snap = await sync_pipeline.stats.snapshot()
    assert (snap.processors["sync.full_resyncs"], snap.processors["sync.full_resyncs.contacts"]) == (1, 1)
    link = LinkRecord.model_validate_json(await sync_pipeline.redis.get(keys.sync_state("-", STATE_KEY, "link")))
    assert (link.kind, link.contact_folder) == ("delta", FOLDER) and DELTA in link.url
    assert await _kept_folder(sync_pipeline) == FOLDER, "a resync keeps the folder"
    assert await sync_pipeline.dead_letters() == []


async def test_a_link_on_the_old_undocumented_path_is_dropped_for_a_full_round_on_the_folder(
    sync_pipeline: Pipeline,
) -> None:
    store = sync_pipeline.sim.state.delta
    kept, gone = store.upsert(COLLECTION, {"displayName": "kept"}), store.upsert(COLLECTION, {"displayName": "x"})
    store.delete(COLLECTION, gone["id"])
    # A state from before contacts were synced per folder: the old path's deltaLink, two items delivered.
    old = LinkRecord(url=f"{sync_pipeline.sim.base_url}/users/{USER}/contacts/delta?$deltatoken=old", kind="delta",
                     full=True, pages=1)  # fmt: skip
    await sync_pipeline.redis.set(keys.sync_state("-", STATE_KEY, "link"), old.model_dump_json())
    items_key = keys.sync_state("-", STATE_KEY, "items")
    await sync_pipeline.redis.hset(items_key, mapping={kept["id"]: kept["changeKey"], gone["id"]: "ck-old"})

    await _run(sync_pipeline)

    assert _requests(sync_pipeline) == [*LOOKUP, ("GET", DELTA, "-", 200)], "never the undocumented path"
    assert [(c.change, c.item_id, c.reason) for c in await _changes(sync_pipeline)] == [
        ("deleted", gone["id"], "absent_after_full_sync")], "kept is not delivered again"  # fmt: skip


async def test_a_named_folder_is_synced_as_given_and_the_default_found_through_its_subfolder(
    sync_pipeline: Pipeline,
) -> None:
    store = sync_pipeline.sim.state.delta
    store.create(COLLECTION)  # the default folder is empty: its id comes from a subfolder's parentFolderId
    child = "AAMkADChildFolder-Vendors="
    contact = store.upsert(f"contacts:{USER}:{child}", {"displayName": "v"})

    await _run(sync_pipeline, folder=child)
    child_delta = f"/users/{USER}/contactFolders/{child}/contacts/delta"
    assert _requests(sync_pipeline) == [("GET", child_delta, "-", 200)], "a named folder needs no lookup"
    (change,) = await _changes(sync_pipeline)
    assert (change.item_id, change.resource_key) == (contact["id"], f"contacts:{USER}:{child}")

    await _run(sync_pipeline)
    assert _requests(sync_pipeline) == [*LOOKUP, ("GET", f"/users/{USER}/contactFolders", "$select,$top", 200),
                                        ("GET", DELTA, "-", 200)]  # fmt: skip
    assert await _kept_folder(sync_pipeline) == FOLDER


async def test_an_empty_default_folder_syncs_nothing_until_it_holds_something(sync_pipeline: Pipeline) -> None:
    store = sync_pipeline.sim.state.delta
    store.create(COLLECTION)
    await _run(sync_pipeline)
    assert [r[1] for r in _requests(sync_pipeline)] == [f"/users/{USER}/contacts", f"/users/{USER}/contactFolders"]
    assert await _kept_folder(sync_pipeline) is None and await _changes(sync_pipeline) == []

    first = store.upsert(COLLECTION, {"displayName": "first"})
    await _run(sync_pipeline)
    assert _requests(sync_pipeline) == [*LOOKUP, ("GET", DELTA, "-", 200)]
    assert [(c.change, c.item_id) for c in await _changes(sync_pipeline)] == [("created", first["id"])]


async def test_an_unknown_user_is_dead_lettered_as_validation_at_the_lookup(sync_pipeline: Pipeline) -> None:
    await sync_pipeline.client.sync(resource="contacts", owner="nobody@contoso.com")
    await eventually(lambda: _dead(sync_pipeline), what="the dead letter")
    (entry,) = await sync_pipeline.dead_letters()
    assert entry.error_class == ErrorClass.VALIDATION and len(entry.attempts) == 1
    assert "contacts of nobody@contoso.com" in (entry.message or "") and "404 ErrorInvalidUser" in (entry.message or "")
    assert [r[1] for r in _requests(sync_pipeline)] == ["/users/nobody@contoso.com/contacts"]


async def _dead(pipeline: Pipeline) -> bool:
    return len(await pipeline.dead_letters()) == 1
