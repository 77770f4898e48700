"""The /_sim control API drives graphsim over HTTP, as the demo and other processes do."""

from __future__ import annotations

import httpx

from graphsim.server import SimServer

CHAT_MESSAGES = "/chats/c1/messages"
BODY = {"body": {"content": "x"}}


async def test_faults_over_http(control: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    added = await control.post(
        "/_sim/faults",
        json=[
            {"path": CHAT_MESSAGES, "status": 429, "retry_after": "10"},
            {"path": CHAT_MESSAGES, "status": 503, "times": 2},
        ],
    )
    assert added.status_code == 201
    assert [f["status"] for f in (await control.get("/_sim/faults")).json()] == [429, 503]

    first = await client.post(CHAT_MESSAGES, json=BODY)
    assert (first.status_code, first.headers["retry-after"]) == (429, "10")
    assert (await control.get("/_sim/faults")).json()[0]["times"] == 2

    assert (await control.delete("/_sim/faults")).status_code == 204
    assert (await client.post(CHAT_MESSAGES, json=BODY)).status_code == 201


async def test_single_fault_and_invalid_fault(control: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    assert (await control.post("/_sim/faults", json={"path": "*", "status": 500})).status_code == 201
    assert (await client.get("/users/u/messages/m")).status_code == 500

    bad = await control.post("/_sim/faults", json={"path": "*", "kind": "explode"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "BadRequest"


async def test_requests_over_http_are_not_recorded_themselves(
    graphsim: SimServer, control: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await client.post(CHAT_MESSAGES, json=BODY)

    listed = (await control.get("/_sim/requests")).json()

    assert len(listed) == 1
    assert listed[0]["method"] == "POST"
    assert listed[0]["path"] == CHAT_MESSAGES
    assert listed[0]["body"] == BODY
    assert listed[0]["status"] == 201
    assert (await control.delete("/_sim/requests")).status_code == 204
    assert (await control.get("/_sim/requests")).json() == []
    assert graphsim.state.requests() == []


async def test_token_over_http(graphsim: SimServer, control: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    assert (await control.put("/_sim/token", json={"token": "only-this"})).status_code == 200
    assert graphsim.state.expected_token == "only-this"
    assert (await client.post(CHAT_MESSAGES, json=BODY)).status_code == 401
    ok = await client.post(CHAT_MESSAGES, json=BODY, headers={"Authorization": "Bearer only-this"})
    assert ok.status_code == 201

    assert (await control.put("/_sim/token", json={"token": None})).status_code == 200
    assert (await client.post(CHAT_MESSAGES, json=BODY)).status_code == 201


async def test_reset_over_http(graphsim: SimServer, control: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    await control.post("/_sim/faults", json={"path": "*", "times": None})
    await client.get("/users/u/messages/m")

    assert (await control.post("/_sim/reset")).status_code == 204

    assert graphsim.state.faults() == []
    assert graphsim.state.requests() == []
    assert (await client.get("/users/u/messages/m")).status_code == 404


async def test_seeding_over_http(control: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    mail = await control.post("/_sim/users/u@x.io/messages", json={"subject": "seeded"})
    chat = await control.post("/_sim/chats/c9/messages", json={"body": {"content": "seeded chat"}})

    assert (await client.get(f"/users/u@x.io/messages/{mail.json()['id']}")).json()["subject"] == "seeded"
    read = await client.get(f"/chats/c9/messages/{chat.json()['id']}")
    assert read.json()["body"]["content"] == "seeded chat"


async def test_sent_mail_over_http(control: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    message = {"subject": "s", "toRecipients": [{"emailAddress": {"address": "a@b.c"}}]}
    await client.post("/users/u@x.io/sendMail", json={"message": message, "saveToSentItems": False})

    [sent] = (await control.get("/_sim/sent-mail")).json()

    assert sent["user_id"] == "u@x.io"
    assert sent["message"] == message
    assert sent["save_to_sent_items"] is False
