"""The API app in this process (httpx's ASGI transport): what needs a seam a real process lacks,
an unreachable Redis, the value a long poll is held to. (The brake on failed token attempts, with
its injected clock: test_auth_brake_http.py.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from graphworks.embedded_redis import free_port
from graphworks_core.settings import load_settings
from ops.app import create_api
from ops.auth import Tokens
from worker.client import GraphworksClient, JobStatus

ADMIN = {"Authorization": "Bearer adm"}


def http(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=30)


async def test_wait_over_60_is_held_to_60(
    redis: aioredis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(redis_url=redis_url, admin_token="adm")
    client = GraphworksClient(redis, settings)
    job_id = await client.enqueue("mail", {"mailbox": "m@c.com", "to": ["a@c.com"], "subject": "s", "body": "b"},
                                  defer_by=3600)  # fmt: skip
    asked: list[float] = []

    async def wait(job_id: str, *, timeout_s: float) -> JobStatus:
        asked.append(timeout_s)
        return await client.status(job_id)

    monkeypatch.setattr(client, "wait", wait)
    async with http(create_api(settings, client=client)) as api:
        for given in ("61", "3600", "0.5"):
            r = await api.get(f"/api/jobs/{job_id}", params={"wait": given}, headers=ADMIN)
            assert r.status_code == 200 and r.json()["status"] == "scheduled"
        assert (await api.get(f"/api/jobs/{job_id}", params={"wait": "-1"}, headers=ADMIN)).status_code == 422
    assert asked == [60.0, 60.0, 0.5]


async def test_an_unreachable_redis_is_a_503_with_json_never_a_500() -> None:
    # Nothing listens on the port: every Redis call fails until REDIS_ENQUEUE_TIMEOUT_S.
    settings = load_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", admin_token="adm",
                             redis_enqueue_timeout_s=0.5, redis_connect_timeout_s=0.2)  # fmt: skip
    app = create_api(settings)
    mail = {"mailbox": "m@c.com", "to": ["a@c.com"], "subject": "s", "body": "b"}
    async with http(app) as api:
        for method, path, body in [
            ("POST", "/api/jobs/mail", mail),
            ("POST", "/api/jobs", {"jobs": [{"type": "mail", "payload": mail}]}),
            ("GET", "/api/jobs/some-id", None),
            ("GET", "/api/jobs/some-id?wait=1", None),
            ("DELETE", "/api/jobs/some-id", None),
            ("GET", "/api/jobs?type=mail", None),
            ("GET", "/api/schedules", None),
            ("PUT", "/api/schedules/s", {"every_s": 60, "type": "mail", "payload": mail}),
            ("POST", "/api/schedules/s/pause", None),
        ]:
            r = await api.request(method, path, json=body, headers=ADMIN)
            assert r.status_code == 503, (method, path, r.text)
            assert "Redis" in r.json()["detail"] and r.headers["retry-after"]
        # Health says so: down (503), as JSON, without a token.
        health = await api.get("/api/queue/health")
        assert health.status_code == 503 and health.json()["status"] == "down", health.text


def test_every_configured_token_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ADMIN_TOKEN", "SERVICE_TOKEN", "VIEWER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    tokens = Tokens.from_settings(load_settings(admin_token="same", viewer_token="same", service_token="other"))
    assert tokens.roles_of("same") == {"admin", "viewer"}
    assert tokens.roles_of("other") == {"service"}
    assert tokens.roles_of("") == set() and tokens.roles_of("sam") == set()
    assert Tokens.from_settings(load_settings()).entries == ()
