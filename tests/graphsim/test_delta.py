"""Delta routes: Graph-shaped pages (nextLink/$skiptoken, deltaLink/$deltatoken), changes between
rounds with @removed, 410 Gone with Location for an expired token, faults per route."""

from __future__ import annotations

from typing import Any

import httpx

from graphsim.delta_resources import default_contacts_folder
from graphsim.faults import Fault
from graphsim.server import SimServer

USER = "adele@contoso.com"
MAIL_KEY = f"mail:{USER}:inbox"
MAIL_DELTA = f"/users/{USER}/mailFolders/inbox/messages/delta"


async def _round(client: httpx.AsyncClient, url: str, **headers: str) -> tuple[list[list[dict[str, Any]]], str]:
    """Every page of one round (value lists) and its deltaLink."""
    pages: list[list[dict[str, Any]]] = []
    while True:
        body = (await client.get(url, headers=headers)).raise_for_status().json()
        pages.append(body["value"])
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return pages, body["@odata.deltaLink"]
        url = body["@odata.nextLink"]
        assert "$skiptoken=" in url


async def test_initial_round_pages_then_only_changes(
    graphsim: SimServer, client: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    added = (await control.post(f"/_sim/delta/{MAIL_KEY}/items",
                                json={"items": [{"subject": f"m{i}"} for i in range(25)]})).json()["items"]  # fmt: skip
    pages, delta_link = await _round(client, MAIL_DELTA)
    assert [len(p) for p in pages] == [10, 10, 5]  # Outlook's default page size
    assert [m["subject"] for p in pages for m in p] == [f"m{i}" for i in range(25)]
    assert "$deltatoken=" in delta_link and delta_link.startswith(graphsim.base_url + MAIL_DELTA)

    first, second = added[0]["id"], added[1]["id"]
    await control.post(f"/_sim/delta/{MAIL_KEY}/items", json={"items": [{"id": first, "subject": "edited"}]})
    assert (await control.delete(f"/_sim/delta/{MAIL_KEY}/items/{second}")).status_code == 204
    new = (await control.post(f"/_sim/delta/{MAIL_KEY}/items", json={"items": [{"subject": "new"}]})).json()

    pages, _ = await _round(client, delta_link, Prefer="odata.maxpagesize=2")
    changes = [m for p in pages for m in p]
    assert [len(p) for p in pages] == [2, 1]
    assert changes[0]["id"] == first and changes[0]["subject"] == "edited"
    assert changes[0]["changeKey"] != added[0]["changeKey"]
    assert changes[1] == {"@odata.type": "#microsoft.graph.message", "id": second, "@removed": {"reason": "deleted"}}
    assert changes[2]["id"] == new["items"][0]["id"]


async def test_expired_token_answers_410_with_location(client: httpx.AsyncClient, control: httpx.AsyncClient) -> None:
    await control.post(f"/_sim/delta/{MAIL_KEY}/items", json={"items": [{"subject": "a"}]})
    _, delta_link = await _round(client, MAIL_DELTA)
    assert (await control.post(f"/_sim/delta/{MAIL_KEY}/expire")).status_code == 204

    gone = await client.get(delta_link)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "syncStateNotFound"
    assert gone.headers["location"].endswith(MAIL_DELTA)
    pages, _ = await _round(client, gone.headers["location"])  # a fresh round works
    assert [m["subject"] for p in pages for m in p] == ["a"]


async def test_drive_removals_use_the_deleted_facet_and_resync_code(
    graphsim: SimServer, client: httpx.AsyncClient
) -> None:
    store = graphsim.state.delta
    item = store.upsert("drive:d1", {"name": "a.txt"})
    _, delta_link = await _round(client, "/drives/d1/root/delta")
    store.delete("drive:d1", item["id"])
    pages, _ = await _round(client, delta_link)
    assert pages[0][0]["deleted"] == {"state": "deleted"} and pages[0][0]["id"] == item["id"]
    store.expire("drive:d1")
    gone = await client.get(delta_link)
    assert (gone.status_code, gone.json()["error"]["code"]) == (410, "resyncChangesApplyDifferences")


async def test_calendar_view_needs_a_window_and_filters_by_it(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    store = graphsim.state.delta
    for day in (1, 15):
        at = f"2024-01-{day:02d}T1"
        start, end = {"dateTime": at + "0:00:00.0000000", "timeZone": "UTC"}, {"dateTime": at + "1:00:00.0000000"}
        store.upsert(f"events:{USER}", {"subject": f"d{day}", "start": start, "end": end})
    missing = await client.get(f"/users/{USER}/calendarView/delta")
    assert missing.status_code == 400
    pages, _ = await _round(
        client, f"/users/{USER}/calendarView/delta?startDateTime=2024-01-10T00:00:00Z&endDateTime=2024-02-01T00:00:00Z"
    )
    assert [e["subject"] for p in pages for e in p] == ["d15"]


async def test_unknown_mailbox_is_404_and_faults_apply(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    unknown = await client.get("/users/nobody@contoso.com/mailFolders/inbox/messages/delta")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "ErrorInvalidUser")
    graphsim.state.delta.create("channel:t1:19:c")
    graphsim.state.add_fault(Fault(method="GET", path="/teams/*/channels/*/messages/delta", status=503))
    assert (await client.get("/teams/t1/channels/19:c/messages/delta")).status_code == 503
    assert (await client.get("/teams/t1/channels/19:c/messages/delta")).status_code == 200


async def test_contacts_delta_is_per_folder_and_the_default_folder_can_be_found(
    graphsim: SimServer, client: httpx.AsyncClient
) -> None:
    store, default = graphsim.state.delta, default_contacts_folder(USER)
    assert default == default_contacts_folder(USER.upper()) and default.startswith("AAMk")
    contact = store.upsert(f"contacts:{USER}:{default}", {"displayName": "Ada"})
    store.create(f"contacts:{USER}:AAMkChildFolder")
    assert contact["parentFolderId"] == default

    pages, _ = await _round(client, f"/users/{USER}/contactFolders/{default}/contacts/delta")
    assert [c["displayName"] for p in pages for c in p] == ["Ada"]
    undocumented = await client.get(f"/users/{USER}/contacts/delta")
    assert (undocumented.status_code, undocumented.json()["error"]["code"]) == (400, "BadRequest")
    assert "contactFolders/{id}/contacts/delta" in undocumented.json()["error"]["message"]

    listed = (await client.get(f"/users/{USER}/contacts?$top=1&$select=parentFolderId")).json()["value"]
    assert listed == [{"id": contact["id"], "parentFolderId": default}]
    folders = (await client.get(f"/users/{USER}/contactFolders")).json()["value"]
    assert folders == [{"id": "AAMkChildFolder", "displayName": "AAMkChildFolder", "parentFolderId": default}]
    unknown = await client.get("/users/nobody@contoso.com/contacts")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "ErrorInvalidUser")
