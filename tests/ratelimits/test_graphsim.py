"""graphsim enforces limits as Graph does: 429 with Retry-After past the limit, refusals counted."""

from __future__ import annotations

import httpx
import pytest

from graphsim.limits import LimitEnforcer, SimLimit
from graphsim.server import SimServer

CHAT_POST = SimLimit(name="chat_post", method="POST", path="/chats/*/messages", rate=20)
PER_CHAT = SimLimit(name="per_chat", method="POST", path="/chats/*/messages", rate=1, scope_segments=2)


def test_sliding_window_per_scope_and_retry_after() -> None:
    enforcer = LimitEnforcer()
    assert enforcer.check("POST", "/chats/a/messages", now=0.0) is None  # off until set
    enforcer.set([CHAT_POST, PER_CHAT])
    assert enforcer.check("POST", "/chats/a/messages", now=100.0) is None
    assert enforcer.check("POST", "/chats/b/messages", now=100.1) is None  # another chat
    assert enforcer.check("POST", "/chats/a/messages", now=100.4) == pytest.approx(0.6)
    assert enforcer.check("GET", "/chats/a/messages", now=100.4) is None  # other method
    # the refused request counted against the window too, as Graph counts throttled requests
    assert enforcer.check("POST", "/chats/a/messages", now=101.0) == pytest.approx(0.4)
    assert enforcer.check("POST", "/chats/a/messages", now=101.4) == pytest.approx(0.6)  # hammering keeps it shut
    assert enforcer.check("POST", "/chats/a/messages", now=102.5) is None
    assert enforcer.refused() == {"chat_post": 0, "per_chat": 3}


def test_never_more_than_rate_in_any_window() -> None:
    enforcer = LimitEnforcer()
    enforcer.set([CHAT_POST.model_copy(update={"count_refused": False})])
    passed = [i * 0.01 for i in range(300) if enforcer.check("POST", f"/chats/{i}/messages", now=i * 0.01) is None]
    assert all(sum(1 for t in passed if s <= t < s + 1) <= 20 for s in passed)
    assert len(passed) == 60


async def test_over_http_429_with_retry_after_and_counts(graphsim: SimServer) -> None:
    async with httpx.AsyncClient() as http:
        put = await http.put(f"{graphsim.root_url}/_sim/limits", json=[PER_CHAT.model_dump()])
        assert put.status_code == 200
        url = f"{graphsim.base_url}/chats/19:x/messages"
        body = {"body": {"content": "hi"}}
        first = await http.post(url, json=body, headers={"Authorization": "Bearer t"})
        second = await http.post(url, json=body, headers={"Authorization": "Bearer t"})
        assert first.status_code == 201
        assert second.status_code == 429
        assert second.json()["error"]["code"] == "TooManyRequests"
        assert 0 < float(second.headers["retry-after"]) <= 1.0
        info = (await http.get(f"{graphsim.root_url}/_sim/limits")).json()
        assert info["refused"] == {"per_chat": 1}
        assert (await http.delete(f"{graphsim.root_url}/_sim/limits")).status_code == 204
        assert (await http.post(url, json=body, headers={"Authorization": "Bearer t"})).status_code == 201
