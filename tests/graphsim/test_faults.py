"""Injected faults: status errors with Retry-After, slowness, TCP resets, and their counting."""

from __future__ import annotations

import time

import httpx
import pytest

from graphsim.app import create_app
from graphsim.faults import Fault
from graphsim.server import SimServer

CHAT_MESSAGES = "/chats/c1/messages"
BODY = {"body": {"content": "x"}}


async def test_429_with_retry_after_fires_once(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    graphsim.state.add_fault(Fault(path="/chats/*/messages", status=429, retry_after="2.5"))

    throttled = await client.post(CHAT_MESSAGES, json=BODY)
    after = await client.post(CHAT_MESSAGES, json=BODY)

    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "2.5"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert throttled.json()["error"]["innerError"]["request-id"] == throttled.headers["request-id"]
    assert after.status_code == 201
    assert [r.status for r in graphsim.state.requests()] == [429, 201]


async def test_fault_with_times_none_keeps_firing(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    graphsim.state.add_fault(Fault(path="/users/*/sendMail", status=500, times=None))

    statuses = [(await client.post("/users/u/sendMail", json={})).status_code for _ in range(4)]

    assert statuses == [500] * 4


async def test_fault_times_counts_down(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    graphsim.state.add_fault(Fault(path=CHAT_MESSAGES, status=504, times=2))

    statuses = [(await client.post(CHAT_MESSAGES, json=BODY)).status_code for _ in range(3)]

    assert statuses == [504, 504, 201]
    assert graphsim.state.faults() == []


async def test_503_without_retry_after(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    graphsim.state.add_fault(Fault(path=CHAT_MESSAGES))

    response = await client.post(CHAT_MESSAGES, json=BODY)

    assert response.status_code == 503
    assert "retry-after" not in response.headers
    assert response.json()["error"]["code"] == "ServiceUnavailable"


async def test_fault_code_and_message_can_be_set(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    graphsim.state.add_fault(Fault(path="*", status=403, graph_code="Forbidden", message="Missing role"))

    response = await client.get("/users/u/messages/m")

    assert response.status_code == 403
    assert response.json()["error"] == {
        **response.json()["error"],
        "code": "Forbidden",
        "message": "Missing role",
    }


async def test_fault_only_matches_its_method_and_path(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    graphsim.state.add_fault(Fault(method="GET", path="/chats/*/messages/*", status=500))

    post = await client.post(CHAT_MESSAGES, json=BODY)
    other = await client.post("/users/u/sendMail", json={})
    get = await client.get(f"{CHAT_MESSAGES}/{post.json()['id']}")

    assert post.status_code == 201
    assert other.status_code == 400
    assert get.status_code == 500


async def test_faults_apply_in_insertion_order(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    graphsim.state.add_fault(Fault(path="/users/*", status=500))  # never matches these requests
    graphsim.state.add_fault(Fault(path=CHAT_MESSAGES, status=429))
    graphsim.state.add_fault(Fault(path="/chats/*", status=503))  # fnmatch: "*" also spans "/"

    statuses = [(await client.post(CHAT_MESSAGES, json=BODY)).status_code for _ in range(3)]

    assert statuses == [429, 503, 201]
    assert [f.path for f in graphsim.state.faults()] == ["/users/*"]


async def test_faults_fire_before_auth(graphsim: SimServer) -> None:
    graphsim.state.add_fault(Fault(path=CHAT_MESSAGES, status=429, retry_after="1"))

    async with httpx.AsyncClient(base_url=graphsim.base_url) as anonymous:
        response = await anonymous.post(CHAT_MESSAGES, json=BODY)

    assert response.status_code == 429


async def test_slow_fault_delays_a_normal_answer(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    graphsim.state.add_fault(Fault(path=CHAT_MESSAGES, kind="slow", delay_s=0.2))

    started = time.perf_counter()
    slow = await client.post(CHAT_MESSAGES, json=BODY)
    slow_s = time.perf_counter() - started
    started = time.perf_counter()
    fast = await client.post(CHAT_MESSAGES, json=BODY)
    fast_s = time.perf_counter() - started

    assert slow.status_code == 201
    assert slow.json()["body"]["content"] == "x"
    assert slow_s >= 0.2
    assert fast.status_code == 201
    assert fast_s < 0.2


async def test_status_fault_with_delay_waits_first(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    graphsim.state.add_fault(Fault(path=CHAT_MESSAGES, status=504, delay_s=0.2))

    started = time.perf_counter()
    response = await client.post(CHAT_MESSAGES, json=BODY)

    assert response.status_code == 504
    assert time.perf_counter() - started >= 0.2


async def test_reset_fault_drops_the_connection(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    graphsim.state.add_fault(Fault(path=CHAT_MESSAGES, kind="reset"))

    # uvicorn aborts with SO_LINGER 0: the client reads ECONNRESET, which httpx raises as ReadError.
    with pytest.raises(httpx.ReadError):
        await client.post(CHAT_MESSAGES, json=BODY)
    after = await client.post(CHAT_MESSAGES, json=BODY)

    assert after.status_code == 201
    assert [(r.path, r.status) for r in graphsim.state.requests()] == [
        (CHAT_MESSAGES, 0),
        (CHAT_MESSAGES, 201),
    ]


def test_reset_fault_with_a_sync_client(graphsim: SimServer) -> None:
    graphsim.state.add_fault(Fault(method="POST", path="/users/*/sendMail", kind="reset"))

    with (
        httpx.Client(base_url=graphsim.base_url, headers={"Authorization": "Bearer t"}) as client,
        pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)),
    ):
        client.post("/users/u/sendMail", json={})


async def test_reset_fault_needs_the_real_server() -> None:
    app = create_app()
    app.sim_state.add_fault(Fault(path="*", kind="reset"))
    transport = httpx.ASGITransport(app=app)

    async with httpx.AsyncClient(transport=transport, base_url="http://sim/v1.0") as client:
        with pytest.raises(RuntimeError, match="real server"):
            await client.get("/chats/c/messages/1", headers={"Authorization": "Bearer t"})


def test_fault_defaults_and_matching() -> None:
    fault = Fault(path="/chats/*/messages")

    assert (fault.method, fault.kind, fault.status, fault.times, fault.delay_s) == ("*", "status", 503, 1, 0)
    assert fault.matches("POST", "/chats/19:a@thread.v2/messages")
    assert not fault.matches("POST", "/chats/a/messages/1")
    assert not Fault(method="get", path="*").matches("POST", "/x")
    assert Fault(method="get", path="*").matches("GET", "/x")
    assert Fault(path="*", status=429).code_for("/x") == "TooManyRequests"
    assert Fault(path="*", status=404).code_for("/users/u/messages/m") == "ErrorItemNotFound"
    assert Fault(path="*", status=404).code_for("/chats/c/messages/m") == "NotFound"
    with pytest.raises(ValueError):
        Fault(path="*", times=0)
    with pytest.raises(ValueError):
        Fault.model_validate({"path": "*", "kind": "explode"})


async def test_reply_fault_answers_its_status_and_body_as_they_are(
    graphsim: SimServer, client: httpx.AsyncClient
) -> None:
    graphsim.state.add_fault(Fault(path=CHAT_MESSAGES, kind="reply", status=202, body={"nextExpectedRanges": ["0-9"]}))

    odd = await client.post(CHAT_MESSAGES, json=BODY)
    after = await client.post(CHAT_MESSAGES, json=BODY)

    assert (odd.status_code, odd.json()) == (202, {"nextExpectedRanges": ["0-9"]})
    assert "request-id" in odd.headers
    assert after.status_code == 201
    assert [r.status for r in graphsim.state.requests()] == [202, 201]


async def test_fault_headers_narrow_the_match(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    graphsim.state.add_fault(Fault(path=CHAT_MESSAGES, status=503, headers={"X-Case": "b*"}))

    assert (await client.post(CHAT_MESSAGES, json=BODY, headers={"x-case": "a1"})).status_code == 201
    assert (await client.post(CHAT_MESSAGES, json=BODY)).status_code == 201
    assert (await client.post(CHAT_MESSAGES, json=BODY, headers={"x-case": "b1"})).status_code == 503
    assert Fault(path="*", headers={"content-range": "bytes *-9/10"}).matches(
        "PUT", "/x", {"content-range": "bytes 5-9/10"}
    )
    assert not Fault(path="*", headers={"content-range": "bytes *-9/10"}).matches("PUT", "/x", {})
