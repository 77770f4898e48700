"""What every Graph route shares: request ids, Date, error bodies, auth and recording."""

from __future__ import annotations

import uuid
from email.utils import parsedate_to_datetime

import httpx

from graphsim.server import SimServer

CHAT_MESSAGES = "/chats/c1/messages"
TOKEN = "test-token"  # what the `client` fixture sends


async def test_success_carries_request_ids_and_date(client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT_MESSAGES, json={"body": {"content": "x"}})

    assert response.status_code == 201
    uuid.UUID(response.headers["request-id"])
    uuid.UUID(response.headers["client-request-id"])
    assert parsedate_to_datetime(response.headers["date"]).tzinfo is not None
    assert len(response.headers.get_list("date")) == 1


async def test_client_request_id_is_echoed_and_request_id_is_fresh(client: httpx.AsyncClient) -> None:
    first = await client.get("/chats/c1/messages/1", headers={"client-request-id": "my-id-1"})
    second = await client.get("/chats/c1/messages/1", headers={"client-request-id": "my-id-1"})

    assert first.headers["client-request-id"] == "my-id-1"
    assert first.headers["request-id"] != second.headers["request-id"]


async def test_error_body_has_graph_shape_and_matching_ids(client: httpx.AsyncClient) -> None:
    response = await client.get("/chats/c1/messages/404", headers={"client-request-id": "cid-7"})

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "innerError"}
    assert error["code"] == "NotFound"
    inner = error["innerError"]
    assert inner["request-id"] == response.headers["request-id"]
    assert inner["client-request-id"] == "cid-7"
    assert inner["date"].startswith("20")


async def test_unknown_segment_is_graph_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/nothingHere")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Resource not found for the segment 'nothingHere'."


async def test_missing_token_is_401(graphsim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=graphsim.base_url) as anonymous:
        response = await anonymous.post(CHAT_MESSAGES, json={"body": {"content": "x"}})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert graphsim.state.requests()[0].status == 401


async def test_any_bearer_token_is_accepted_without_an_expected_one(client: httpx.AsyncClient) -> None:
    response = await client.post(
        CHAT_MESSAGES, json={"body": {"content": "x"}}, headers={"Authorization": "Bearer whatever"}
    )
    basic = await client.post(CHAT_MESSAGES, json={"body": {"content": "x"}}, headers={"Authorization": "Basic eDp5"})

    assert response.status_code == 201
    assert basic.status_code == 401


async def test_wrong_token_is_401_when_a_token_is_expected(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    graphsim.state.expected_token = TOKEN

    right = await client.post(CHAT_MESSAGES, json={"body": {"content": "x"}})
    wrong = await client.post(CHAT_MESSAGES, json={"body": {"content": "x"}}, headers={"Authorization": "Bearer nope"})

    assert right.status_code == 201
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "InvalidAuthenticationToken"


async def test_requests_are_recorded(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    await client.post(f"{CHAT_MESSAGES}?x=1", json={"body": {"content": "recorded"}})
    await client.get("/users/u1/messages/nope")

    first, second = graphsim.state.requests()
    assert first.method == "POST"
    assert first.path == CHAT_MESSAGES
    assert first.query == {"x": "1"}
    assert first.body == {"body": {"content": "recorded"}}
    assert first.body_size > 0
    assert first.status == 201
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.request_id
    assert first.at > 0
    assert (second.method, second.path, second.status, second.body) == (
        "GET",
        "/users/u1/messages/nope",
        404,
        None,
    )


async def test_record_request_id_matches_response(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    response = await client.get("/chats/c1/messages/1")

    [recorded] = graphsim.state.requests()
    assert recorded.request_id == response.headers["request-id"]


async def test_reset_state_forgets_everything(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    posted = (await client.post(CHAT_MESSAGES, json={"body": {"content": "x"}})).json()
    graphsim.state.expected_token = "t"

    graphsim.state.reset()

    assert graphsim.state.requests() == []
    assert graphsim.state.expected_token is None
    assert (await client.get(f"{CHAT_MESSAGES}/{posted['id']}")).status_code == 404
