"""The dashboard's server side in this process (httpx's ASGI transport) on the session's Redis: the
sign-in, its cookie and CSRF rules, the session kept in Redis, the headers every page response
carries, and how the assets are sent. The browser's view of the same is tests/dashboard/."""

from __future__ import annotations

import gzip
import hashlib
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from graphworks.embedded_redis import free_port
from graphworks_core import keys
from graphworks_core.clock import FakeClock
from graphworks_core.settings import load_settings
from ops.app import create_api
from ops.dashboard.page import CSP, load_assets

TOKENS = {"admin_token": "adm-secret", "viewer_token": "view-secret", "service_token": "svc-secret"}


def http(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.0.0.7", 5000)),
                             base_url="http://api", timeout=30)  # fmt: skip


def app_for(redis: aioredis.Redis, redis_url: str, **settings: Any) -> Any:
    return create_api(load_settings(redis_url=redis_url, **{**TOKENS, **settings}), redis=redis, clock=FakeClock(1e9))


async def sign_in(api: httpx.AsyncClient, token: str) -> httpx.Response:
    return await api.post("/dashboard/session", json={"token": token})


async def test_sign_in_sets_an_httponly_strict_cookie_and_answers_the_csrf_token(
    redis: aioredis.Redis, redis_url: str
) -> None:
    async with http(app_for(redis, redis_url)) as api:
        r = await sign_in(api, "adm-secret")
        assert r.status_code == 200 and r.json()["role"] == "admin" and len(r.json()["csrf"]) >= 40
        raw = r.headers["set-cookie"]
        morsel = SimpleCookie(raw)["graphworks_session"]
        assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
        assert int(morsel["max-age"]) == 8 * 3600 and not morsel["secure"]  # plain http here; https adds Secure
        assert r.headers["cache-control"] == "no-store"
        sid = morsel.value
        # Redis keeps the session under the SHA-256 of the cookie, never the cookie or the token.
        stored = await redis.hgetall(keys.dashboard_session(hashlib.sha256(sid.encode()).hexdigest()))
        assert stored[b"role"] == b"admin" and stored[b"csrf"].decode() == r.json()["csrf"]
        dump = b"".join([k + v for k, v in stored.items()])
        assert sid.encode() not in dump and b"adm-secret" not in dump
        assert await redis.ttl(keys.dashboard_session(hashlib.sha256(sid.encode()).hexdigest())) > 8 * 3600 - 60
        me = await api.get("/dashboard/session")
        assert me.json() == {"signed_in": True, "role": "admin", "csrf": r.json()["csrf"]}
        secure = await api.post("/dashboard/session", json={"token": "adm-secret"},
                                headers={"X-Forwarded-Proto": "https"})  # fmt: skip
        assert SimpleCookie(secure.headers["set-cookie"])["graphworks_session"]["secure"]


async def test_the_cookie_opens_the_api_reads_freely_and_writes_only_with_the_csrf_header(
    redis: aioredis.Redis, redis_url: str
) -> None:
    async with http(app_for(redis, redis_url)) as api:
        csrf = (await sign_in(api, "adm-secret")).json()["csrf"]
        assert (await api.get("/api/queue/stats")).status_code == 200
        assert (await api.post("/api/queue/mail/pause")).status_code == 403
        assert (await api.post("/api/queue/mail/pause", headers={"X-CSRF-Token": csrf[:-1] + "x"})).status_code == 403
        assert (
            await api.post("/api/queue/mail/pause", headers={"X-CSRF-Token": "\u00e9".encode("latin-1") * 10})
        ).status_code == 403
        ok = await api.post("/api/queue/mail/pause", headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200 and ok.json()["paused"] is True
        audit = (await api.get("/api/queue/audit")).json()["entries"]
        assert audit[0]["action"] == "queue.pause" and audit[0]["role"] == "admin"
        # A header token wins over the cookie: a wrong one is refused even with a good session.
        assert (await api.get("/api/queue/stats", headers={"Authorization": "Bearer nope"})).status_code == 401


async def test_the_viewer_session_reads_and_is_refused_every_change(redis: aioredis.Redis, redis_url: str) -> None:
    async with http(app_for(redis, redis_url)) as api:
        csrf = (await sign_in(api, "view-secret")).json()["csrf"]
        assert (await api.get("/api/queue/dead-letter/groups")).status_code == 200
        refused = await api.post("/api/queue/mail/pause", headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 403


async def test_the_service_token_opens_no_page_and_wrong_or_missing_tokens_are_401(
    redis: aioredis.Redis, redis_url: str
) -> None:
    async with http(app_for(redis, redis_url)) as api:
        service = await sign_in(api, "svc-secret")
        assert service.status_code == 403 and "ADMIN_TOKEN or VIEWER_TOKEN" in service.json()["detail"]
        assert "set-cookie" not in service.headers
        assert (await sign_in(api, "wrong")).status_code == 401
        assert (await api.post("/dashboard/session", json={})).status_code == 401
        assert (await api.post("/dashboard/session", content=b"token=x")).status_code == 415
        huge = await api.post("/dashboard/session", json={"token": "x" * 10_000})
        assert huge.status_code == 413
        assert (await api.get("/dashboard/session")).json() == {"signed_in": False, "role": None, "csrf": None}


async def test_wrong_sign_ins_count_against_the_apis_brake(redis: aioredis.Redis, redis_url: str) -> None:
    async with http(app_for(redis, redis_url, api_auth_failures_per_min=3)) as api:
        assert [(await sign_in(api, f"guess-{i}")).status_code for i in range(4)] == [401, 401, 401, 429]
        held = await sign_in(api, "adm-secret")  # the right one too, while held
        assert held.status_code == 429 and int(held.headers["retry-after"]) >= 1
        assert (await api.get("/api/queue/stats", headers={"Authorization": "Bearer adm-secret"})).status_code == 429


async def test_sign_out_ends_the_session_everywhere_and_needs_the_csrf_header(
    redis: aioredis.Redis, redis_url: str
) -> None:
    app = app_for(redis, redis_url)
    async with http(app) as api, http(app_for(redis, redis_url)) as other:
        r = await sign_in(api, "adm-secret")
        csrf, sid = r.json()["csrf"], SimpleCookie(r.headers["set-cookie"])["graphworks_session"].value
        other.cookies.set("graphworks_session", sid)
        assert (await other.get("/api/queue/stats")).status_code == 200  # another serve process: same session
        assert (await api.delete("/dashboard/session")).status_code == 403
        out = await api.delete("/dashboard/session", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 200 and "Max-Age=0" in out.headers["set-cookie"]
        assert (await other.get("/api/queue/stats")).status_code == 401


async def test_a_token_taken_out_of_the_settings_ends_its_sessions(redis: aioredis.Redis, redis_url: str) -> None:
    async with http(app_for(redis, redis_url)) as api:
        sid = SimpleCookie((await sign_in(api, "adm-secret")).headers["set-cookie"])["graphworks_session"].value
    rotated = app_for(redis, redis_url, admin_token="a-new-admin-secret")
    async with http(rotated) as api:
        api.cookies.set("graphworks_session", sid)
        assert (await api.get("/api/queue/stats")).status_code == 401
        assert (await api.get("/dashboard/session")).json()["signed_in"] is False


async def test_every_dashboard_response_carries_the_csp_and_no_inline_script(
    redis: aioredis.Redis, redis_url: str
) -> None:
    async with http(app_for(redis, redis_url)) as api:
        for method, path in (("GET", "/dashboard"), ("GET", "/dashboard/"), ("GET", "/dashboard/static/app.css"),
                             ("GET", "/dashboard/static/nope.js"), ("POST", "/dashboard"),
                             ("GET", "/dashboard/session"), ("POST", "/dashboard/session")):  # fmt: skip
            r = await api.request(method, path, json={} if method == "POST" else None)
            assert r.headers["content-security-policy"] == CSP, path
            assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
        assert (await api.get("/dashboard/static/nope.js")).status_code == 404
        assert (await api.post("/dashboard")).status_code == 405
        shell = (await api.get("/dashboard")).text
        assert "<script" in shell and all(" src=" in tag for tag in shell.split("<script")[1:])
        assert " style=" not in shell and "http://" not in shell and "https://" not in shell  # no CDN
        root = await api.get("/", follow_redirects=False)
        assert root.status_code == 307 and root.headers["location"] == "/dashboard"


async def test_assets_are_gzipped_and_revalidated_by_etag(redis: aioredis.Redis, redis_url: str) -> None:
    assets = load_assets()
    assert {"index.html", "app.css", "js/app.js"} <= set(assets)
    async with http(app_for(redis, redis_url)) as api:
        r = await api.get("/dashboard/static/js/app.js", headers={"Accept-Encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip" and r.headers["content-type"].startswith("text/javascript")
        assert r.content == assets["js/app.js"].body  # httpx decodes it
        assert int(r.headers["content-length"]) == len(gzip.compress(assets["js/app.js"].body, 9, mtime=0))
        again = await api.get("/dashboard/static/js/app.js", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        plain = await api.get("/dashboard/static/app.css", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == assets["app.css"].body


@pytest.mark.parametrize("path", ["/dashboard/session", "/api/queue/stats"])
async def test_an_unreachable_redis_is_a_503_for_a_cookie_never_a_500(path: str) -> None:
    settings = load_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_enqueue_timeout_s=0.5,
                             redis_connect_timeout_s=0.2, **TOKENS)  # fmt: skip
    async with http(create_api(settings)) as api:
        api.cookies.set("graphworks_session", "some-session")
        r = await api.get(path)
        assert r.status_code == 503 and "retry-after" in r.headers
