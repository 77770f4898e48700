"""The limiter around every GraphClient request, over real HTTP: 429s close the request's own
scopes in Redis for every worker, explicit `limits=` override the route table."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from graphsim.faults import Fault
from graphsim.server import SimServer
from graphworks_core import keys
from graphworks_core.clock import FakeClock
from graphworks_core.errors import GraphHTTPError
from ratelimits.base import LimitDeferred, Use
from ratelimits.config import LimitsConfig
from ratelimits.limiter import GraphLimiter
from ratelimits.redis_backend import RedisBackend
from ratelimits.waiting import AutoAdvanceSleeper
from worker.graph.auth import StaticTokenProvider
from worker.graph.client import GraphClient


def limited_client(
    sim: SimServer, redis: aioredis.Redis, clock: FakeClock, config: LimitsConfig | None = None
) -> tuple[GraphClient, GraphLimiter]:
    limiter = GraphLimiter(RedisBackend(redis), config or LimitsConfig(), tenant="contoso", base_url=sim.base_url,
                           clock=clock, sleeper=AutoAdvanceSleeper(clock))  # fmt: skip
    return GraphClient(sim.base_url, StaticTokenProvider("t"), limiter=limiter), limiter


async def cooling(redis: aioredis.Redis, key: str) -> float | None:
    value = await redis.get(keys.limit_cooldown(key))
    return float(value) if value else None


@pytest.mark.parametrize(("status", "retry_after", "cools"), [(429, "3", True), (503, "3", True), (503, None, False)])
async def test_throttled_answer_closes_the_mailbox_for_retry_after(
    graphsim: SimServer, redis: aioredis.Redis, status: int, retry_after: str | None, cools: bool
) -> None:
    clock = FakeClock()
    client, _ = limited_client(graphsim, redis, clock)
    graphsim.state.add_fault(Fault(method="POST", path="/users/*/sendMail", status=status, retry_after=retry_after))
    try:
        with pytest.raises(GraphHTTPError):
            await client.call("POST", client.sdk.users.by_user_id("Ops@contoso.com").send_mail, json_body={"m": 1})
    finally:
        await client.close()
    until = await cooling(redis, "outlook:contoso:ops@contoso.com")
    assert until == (pytest.approx(clock.now() + 3, abs=1e-6) if cools else None)  # the fake clock never moved
    assert await cooling(redis, "global:contoso") is None  # one mailbox's 429 never stops the app


async def test_explicit_limits_replace_the_route_table(graphsim: SimServer, redis: aioredis.Redis) -> None:
    clock = FakeClock()
    client, limiter = limited_client(graphsim, redis, clock)
    try:
        await client.call_url("POST", f"{graphsim.base_url}/chats/19:a/messages", json_body={"body": {"content": "x"}},
                              limits=[Use("outlook", "box@contoso.com", upload_bytes=1000)])  # fmt: skip
        await client.call("POST", client.sdk.chats.by_chat_id("19:b").messages, json_body={"body": {"content": "y"}})
    finally:
        await client.close()
    sent = {s.key: s.sent for s in await limiter.snapshot()}
    assert sent == {"outlook:contoso:box@contoso.com": 1, "teams.chat_post:contoso": 1, "teams.chat:19:b": 1,
                    "global:contoso": 2}  # fmt: skip
    assert await redis.zcard(keys.limit_state("outlook:contoso:box@contoso.com#bytes")) == 1


async def test_a_deferral_is_decided_before_the_sdk_builds_the_request(
    graphsim: SimServer, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job that is only going to be deferred costs no SDK work: nothing reaches its adapter."""
    clock = FakeClock()
    client, limiter = limited_client(graphsim, redis, clock, LimitsConfig(max_wait_s=0.5))
    sdk_sends: list[object] = []
    real_send = client._adapter.send_async

    async def counting(*args: object) -> object:
        sdk_sends.append(args[0])
        return await real_send(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(client._adapter, "send_async", counting)
    chat = client.sdk.chats.by_chat_id("19:a").messages
    try:
        await client.call("POST", chat, json_body={"body": {"content": "1"}})
        assert len(sdk_sends) == 1
        with pytest.raises(LimitDeferred) as deferred:  # 1 rps per chat, max wait 0.5 s: book the next second
            await client.call("POST", chat, json_body={"body": {"content": "2"}})
    finally:
        await client.close()
    assert len(sdk_sends) == 1
    # the chat's 1 rps paced with the default headroom (0.97): the slot is 1 / 0.97 s after the first
    assert deferred.value.booking is not None
    assert deferred.value.booking.at == pytest.approx(clock.now() + 1 / 0.97, abs=1e-6)
    assert len(graphsim.state.requests()) == 1
    assert {s.key: s.sent for s in await limiter.snapshot()}["teams.chat:19:a"] == 1


async def test_a_request_that_fails_before_the_wire_gives_its_lease_back(
    graphsim: SimServer, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    client, limiter = limited_client(graphsim, redis, clock)

    async def broken(*args: object) -> object:
        raise RuntimeError("middleware blew up")

    monkeypatch.setattr(client._adapter, "send_async", broken)
    send = client.sdk.users.by_user_id("box@contoso.com").send_mail
    try:
        for _ in range(6):  # more than the mailbox's 4 concurrent: each lease must have come back
            with pytest.raises(RuntimeError):
                await client.call("POST", send, json_body={"m": 1})
    finally:
        await client.close()
    assert await redis.zcard(keys.limit_leases("outlook:contoso:box@contoso.com")) == 0
    assert {s.key: s.blocked for s in await limiter.snapshot()}["outlook:contoso:box@contoso.com"] == 0


async def test_a_request_whose_query_the_sdk_rewrites_is_charged_once(
    graphsim: SimServer, redis: aioredis.Redis
) -> None:
    """kiota decodes %24 in query names and httpx re-encodes the query: the reservation made
    before the SDK is still the one used at the wire, not a second slot."""
    clock = FakeClock()
    client, limiter = limited_client(graphsim, redis, clock)
    url = f"{graphsim.base_url}/users/box@contoso.com/messages?%24select=id&%24filter=subject eq 'a b'"
    try:
        with pytest.raises(GraphHTTPError):  # graphsim has no GET on this collection: 405 is fine here
            await client.call_url("GET", url)
    finally:
        await client.close()
    (seen,) = graphsim.state.requests()
    assert seen.query == {"$select": "id", "$filter": "subject eq 'a b'"}  # rewritten on the way
    assert {s.key: s.sent for s in await limiter.snapshot()}["outlook:contoso:box@contoso.com"] == 1
