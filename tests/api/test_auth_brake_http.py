"""The brake on failed token attempts over real HTTP: two `graphworks serve` processes on one Redis agree
on who is held, every guarded route answers 429 to a held client whatever its token, /metrics counts
it, the cool-off ends (in this process with an injected clock: Redis keeps the times the callers
give), a Redis outage is a 503, and a missing and a wrong token cost the same.

Each test speaks from a loopback address of its own (127.0.0.N, bound with httpx's local_address), so
the brake's per-client state of one test never reaches another.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from bench.chaos.proxy import FaultProxy
from graphworks.embedded_redis import free_port
from graphworks_core import keys
from graphworks_core.clock import FakeClock
from graphworks_core.settings import load_settings
from ops.app import create_api
from tests.api.conftest import ADMIN, SERVICE, VIEWER, Served, serve

pytestmark = pytest.mark.slow

WRONG = {"Authorization": "Bearer guessed-token"}
MISSING: dict[str, str] = {}
MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "s", "body": "b"}
# Guarded routes, each with a token that reaches it and a body it accepts.
ROUTES: list[tuple[str, str, str, object]] = [
    ("GET", "/api/jobs/some-job", SERVICE, None),
    ("POST", "/api/jobs/mail", SERVICE, MAIL),
    ("GET", "/api/schedules", SERVICE, None),
    ("GET", "/api/queue/stats", VIEWER, None),
    ("GET", "/metrics", VIEWER, None),
    ("GET", "/api/queue/dead-letter/groups", ADMIN, None),
    ("POST", "/api/queue/mail/resume", ADMIN, None),
]


def clear_brake(r: redis.Redis) -> None:
    """Forget every client's failures and holds (the session's Redis outlives this module)."""
    for key in list(r.scan_iter(match=f"{keys.PREFIX}auth:*")):
        r.delete(key)


def speaker(served: Served, address: str) -> httpx.Client:
    """A client to `served` whose requests come from `address` (a 127.0.0.0/8 address: loopback)."""
    return httpx.Client(base_url=served.url, transport=httpx.HTTPTransport(local_address=address), timeout=60)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def pair(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Served]]:
    """Two `serve` processes on the session's Redis, with the default brake (20 a minute)."""
    logs = tmp_path_factory.mktemp("brake")
    a = serve(redis_url, logs / "a.log")
    try:
        b = serve(redis_url, logs / "b.log")
        try:
            clear_brake(a.redis)
            yield a, b
        finally:
            clear_brake(b.redis)
            b.proc.stop()
            b.redis.close()
    finally:
        a.proc.stop()
        a.redis.close()


def test_more_than_20_failures_on_one_process_hold_the_client_on_the_other(pair: tuple[Served, Served]) -> None:
    a, b = pair
    with speaker(a, "127.0.0.11") as on_a, speaker(b, "127.0.0.11") as on_b, speaker(b, "127.0.0.12") as other:
        for i in range(20):  # missing and wrong tokens alike are failed attempts
            r = on_a.get("/api/jobs/some-job", headers=WRONG if i % 2 else MISSING)
            assert r.status_code == 401, (i, r.text)
        held = on_a.get("/api/jobs/some-job", headers=WRONG)
        assert held.status_code == 429, held.text
        assert 59 <= int(held.headers["retry-after"]) <= 60
        # Process B has seen none of them, and holds the client back anyway: on every route, for
        # every token, the right ones included (a guesser must not learn when it guessed right).
        for method, path, token, body in ROUTES:
            for headers in (bearer(token), bearer(ADMIN), WRONG, MISSING):
                r = on_b.request(method, path, json=body, headers=headers)
                assert r.status_code == 429, (method, path, r.status_code, r.text)
                assert 1 <= int(r.headers["retry-after"]) <= 60
                assert "too many failed token attempts" in r.json()["detail"]
        # Another client is not held, and neither are the routes that need no token.
        for method, path, token, body in ROUTES:
            if path == "/api/jobs/mail":
                continue  # it would enqueue a mail for the next module's worker
            r = other.request(method, path, json=body, headers=bearer(token))
            assert r.status_code not in (401, 403, 429) and r.status_code < 500, (method, path, r.text)
        assert on_b.get("/api/queue/health").status_code == 200


def test_20_failures_a_minute_are_not_held(pair: tuple[Served, Served]) -> None:
    a, b = pair
    with speaker(a, "127.0.0.13") as on_a, speaker(b, "127.0.0.13") as on_b:
        for i in range(20):
            r = (on_a if i % 2 else on_b).get("/api/schedules", headers=WRONG)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), r.text
        assert on_b.get("/api/schedules", headers=bearer(SERVICE)).status_code == 200
        assert on_a.get("/api/schedules", headers=MISSING).status_code == 429  # the 21st


def scrape(served: Served) -> dict[str, float]:
    with speaker(served, "127.0.0.14") as c:
        r = c.get("/metrics", headers=bearer(VIEWER))
    assert r.status_code == 200, r.text
    return {s.name: s.value for f in text_string_to_metric_families(r.text) for s in f.samples}


def test_metrics_count_the_failures_and_the_refusals_cluster_wide(pair: tuple[Served, Served]) -> None:
    a, b = pair
    before = scrape(b)
    with speaker(a, "127.0.0.15") as on_a, speaker(b, "127.0.0.15") as on_b:
        statuses = [on_a.get("/api/jobs/x", headers=WRONG if i % 3 else MISSING).status_code for i in range(21)]
        statuses += [on_b.get("/api/jobs/x", headers=bearer(SERVICE)).status_code for _ in range(4)]
    assert statuses == [401] * 20 + [429] * 5
    after = scrape(a)  # the other process: the counters live in Redis
    assert after["graphworks_api_auth_failures_total"] - before.get("graphworks_api_auth_failures_total", 0) == 21
    assert after["graphworks_api_auth_blocked_total"] - before.get("graphworks_api_auth_blocked_total", 0) == 5


def test_a_missing_and_a_wrong_token_cost_the_same_redis_commands(pair: tuple[Served, Served]) -> None:
    a, _ = pair
    with speaker(a, "127.0.0.16") as c:
        assert c.get("/api/jobs/x", headers=WRONG).status_code == 401  # the script is loaded
        costs = []
        for headers in (MISSING, WRONG, MISSING, WRONG):
            a.redis.config_resetstat()
            assert c.get("/api/jobs/x", headers=headers).status_code == 401
            stats = a.redis.info("commandstats")
            costs.append({k: v["calls"] for k, v in stats.items() if "config" not in k and "info" not in k})
    assert costs[0]["cmdstat_evalsha"] == 1, costs  # one round trip
    assert costs == [costs[0]] * 4, costs


@pytest.fixture(scope="module")
def slow_redis(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, FaultProxy]]:
    """`serve` whose Redis is behind a loopback proxy (bench/chaos/proxy.py), so that every Redis round
    trip it makes costs a known, large time; its brake far above what the timing test sends."""
    url = urlsplit(redis_url)
    assert url.hostname and url.port
    with FaultProxy(url.hostname, url.port) as proxy:
        proxied = url._replace(netloc=f"{proxy.host}:{proxy.port}").geturl()
        s = serve(proxied, tmp_path_factory.mktemp("slow") / "serve.log", API_AUTH_FAILURES_PER_MIN="10000000")
        try:
            yield s, proxy
        finally:
            clear_brake(s.redis)
            s.proc.stop()
            s.redis.close()


def test_a_missing_and_a_wrong_token_take_the_same_time(slow_redis: tuple[Served, FaultProxy]) -> None:
    """Many of each, interleaved in a random order, against a real `serve`: the medians agree.

    What could tell the two apart is a difference in work: an early exit for the missing token (no
    Redis call), or an extra Redis round trip for one of them. On loopback a round trip costs ~0.1 ms
    against ~1 ms for the whole request, under the noise of a loaded machine; so the proxy holds
    every chunk 10 ms each way, and each Redis round trip costs 20 ms or more. Taking one path, both
    kinds cost one round trip plus a request's own few ms, and the ratio of their medians stays near
    1 (the request's own time would have to differ by ~7 ms in the median, for one kind only, to
    leave the bounds). An early exit puts it near 20, a second round trip near 2: both outside
    2/3..3/2. The medians of interleaved samples are robust to a loaded machine: a stall slows a few
    samples of both kinds, and moves neither median.
    """
    served, proxy = slow_redis
    proxy.set_latency(0.010)
    rng = random.Random(20261202)
    taken: dict[str, list[float]] = {"missing": [], "wrong": []}
    with speaker(served, "127.0.0.17") as c:

        def timed(kind: str) -> None:
            started = time.perf_counter()
            r = c.get("/api/jobs/x", headers=MISSING if kind == "missing" else WRONG)
            taken[kind].append(time.perf_counter() - started)
            assert r.status_code == 401, r.text

        for _ in range(5):  # warm: the connection, the script
            timed("missing")
            timed("wrong")
        taken = {"missing": [], "wrong": []}
        for _ in range(100):
            for kind in rng.sample(["missing", "wrong"], 2):
                timed(kind)
    missing, wrong = statistics.median(taken["missing"]), statistics.median(taken["wrong"])
    assert missing >= 0.020 and wrong >= 0.020, (missing, wrong)  # each made its Redis round trip
    assert 2 / 3 < wrong / missing < 3 / 2, (missing, wrong)


async def test_the_cooloff_ends_after_a_minute_and_the_count_starts_afresh(
    redis: aioredis.Redis, redis_url: str
) -> None:
    """In this process (httpx's ASGI transport) with an injected clock, on the real Redis; and
    API_AUTH_FAILURES_PER_MIN is the limit."""
    clock = FakeClock(1_900_000_000.0)
    settings = load_settings(redis_url=redis_url, admin_token=ADMIN, api_auth_failures_per_min=5)
    app = create_api(settings, redis=redis, clock=clock)
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=30) as api:

        async def status(headers: dict[str, str]) -> tuple[int, str | None]:
            r = await api.get("/api/jobs/x", headers=headers)
            return r.status_code, r.headers.get("retry-after")

        for _ in range(5):
            assert await status(WRONG) == (401, None)
        assert await status(WRONG) == (429, "60")
        clock.advance(59.5)
        assert await status(bearer(ADMIN)) == (429, "1")
        clock.advance(0.5)
        assert await status(bearer(ADMIN)) == (404, None)  # through to the route: no such job
        for _ in range(5):
            assert await status(MISSING) == (401, None)
        assert await status(MISSING) == (429, "60")
        clock.advance(60)
        assert await status(bearer(ADMIN)) == (404, None)


async def test_a_redis_outage_in_the_brake_is_a_503_never_a_500() -> None:
    # Nothing listens on the port: the brake's call fails until REDIS_ENQUEUE_TIMEOUT_S.
    settings = load_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", admin_token=ADMIN,
                             redis_enqueue_timeout_s=0.5, redis_connect_timeout_s=0.2)  # fmt: skip
    app = create_api(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=30) as api:
        for headers in (MISSING, WRONG, bearer(ADMIN)):
            r = await api.get("/api/queue/stats", headers=headers)
            assert r.status_code == 503, r.text
            assert "Redis" in r.json()["detail"] and int(r.headers["retry-after"]) >= 1
