"""Serving graphsim: URLs, a second independent server, and stopping."""

from __future__ import annotations

import httpx

from graphsim.server import SimServer, run_in_thread
from graphsim.state import SimState


def test_urls(graphsim: SimServer) -> None:
    assert graphsim.base_url == f"http://127.0.0.1:{graphsim.port}/v1.0"
    assert graphsim.root_url == f"http://127.0.0.1:{graphsim.port}"
    assert graphsim.port > 0


def test_own_server_with_given_state_and_stop() -> None:
    state = SimState(expected_token="abc")
    server = run_in_thread(state=state)
    try:
        assert server.state is state
        response = httpx.post(
            f"{server.base_url}/chats/c/messages",
            json={"body": {"content": "x"}},
            headers={"Authorization": "Bearer abc"},
        )
        assert response.status_code == 201
        assert len(state.requests()) == 1
    finally:
        server.stop()

    try:
        httpx.get(f"{server.base_url}/chats/c/messages/1", timeout=1.0)
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("server still answering after stop()")
