"""Teams routes: chat and channel messages have Graph's shapes and can be read back."""

from __future__ import annotations

import re
from datetime import datetime

import httpx

from graphsim.server import SimServer

CHAT = "19:2da4c29f6d7041eca70b638b43d45437@thread.v2"


async def test_post_chat_message_returns_a_chat_message(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/chats/{CHAT}/messages",
        json={"body": {"contentType": "html", "content": "<b>hi</b>"}, "importance": "urgent"},
    )

    assert response.status_code == 201
    message = response.json()
    assert re.fullmatch(r"\d{13}", message["id"])
    assert message["@odata.context"].endswith("/messages/$entity")
    assert "chats(" in message["@odata.context"]
    assert message["chatId"] == CHAT
    assert message["messageType"] == "message"
    assert message["importance"] == "urgent"
    assert message["body"] == {"contentType": "html", "content": "<b>hi</b>"}
    assert message["from"]["user"]["id"]
    assert message["from"]["user"]["displayName"]
    assert message["etag"]
    assert message["channelIdentity"] is None
    created = datetime.fromisoformat(message["createdDateTime"].replace("Z", "+00:00"))
    assert created.tzinfo is not None
    assert message["lastModifiedDateTime"] == message["createdDateTime"]


async def test_chat_message_defaults_and_unique_ids(client: httpx.AsyncClient) -> None:
    first = (await client.post(f"/chats/{CHAT}/messages", json={"body": {"content": "a"}})).json()
    second = (await client.post(f"/chats/{CHAT}/messages", json={"body": {"content": "b"}})).json()

    assert first["importance"] == "normal"
    assert first["body"]["contentType"] == "text"
    assert first["id"] != second["id"]


async def test_posted_chat_message_can_be_read_back(client: httpx.AsyncClient) -> None:
    posted = (await client.post(f"/chats/{CHAT}/messages", json={"body": {"content": "hello"}})).json()

    response = await client.get(f"/chats/{CHAT}/messages/{posted['id']}")

    assert response.status_code == 200
    assert response.json() == posted


async def test_seeded_chat_message_can_be_read(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    message_id = graphsim.state.seed_chat_message(CHAT, {"body": {"contentType": "text", "content": "seeded"}})

    response = await client.get(f"/chats/{CHAT}/messages/{message_id}")

    assert response.status_code == 200
    assert response.json()["body"]["content"] == "seeded"
    assert response.json()["chatId"] == CHAT


async def test_unknown_chat_message_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/chats/{CHAT}/messages/123")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"


async def test_chat_message_without_content_is_400(client: httpx.AsyncClient) -> None:
    payloads: list[dict[str, object]] = [
        {},
        {"body": {}},
        {"body": {"content": ""}},
        {"body": {"content": 3}},
    ]
    for payload in payloads:
        response = await client.post(f"/chats/{CHAT}/messages", json=payload)
        assert response.status_code == 400, payload
        assert response.json()["error"]["code"] == "BadRequest"
        assert response.json()["error"]["message"]


async def test_chat_message_with_bad_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/chats/{CHAT}/messages", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


async def test_post_channel_message_has_channel_identity(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/teams/team-1/channels/19:general@thread.tacv2/messages", json={"body": {"content": "to all"}}
    )

    assert response.status_code == 201
    message = response.json()
    assert message["channelIdentity"] == {"teamId": "team-1", "channelId": "19:general@thread.tacv2"}
    assert message["body"]["content"] == "to all"
    assert message["messageType"] == "message"
    assert re.fullmatch(r"\d{13}", message["id"])

    read = await client.get(f"/teams/team-1/channels/19:general@thread.tacv2/messages/{message['id']}")
    assert read.status_code == 200
    assert read.json()["id"] == message["id"]
