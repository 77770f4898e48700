"""Who reaches which route, over real HTTP (`graphworks serve` with the three tokens set), and what
each `--role` serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from graphworks_core import keys
from tests.api.conftest import ADMIN, SERVICE, VIEWER, Served, serve

pytestmark = pytest.mark.slow

MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "s", "body": "b"}
SCHEDULE = {"every_s": 3600, "type": "mail", "payload": MAIL}
# Every Service API route, with a body it accepts.
ROUTES: list[tuple[str, str, object]] = [
    ("POST", "/api/jobs/mail", MAIL),
    ("POST", "/api/jobs", {"jobs": [{"type": "mail", "payload": MAIL, "defer_s": 3600}]}),
    ("GET", "/api/jobs?type=mail", None),
    ("GET", "/api/jobs/some-job", None),
    ("DELETE", "/api/jobs/some-job", None),
    ("GET", "/api/schedules", None),
    ("PUT", "/api/schedules/auth-table", SCHEDULE),
    ("GET", "/api/schedules/auth-table", None),
    ("POST", "/api/schedules/auth-table/pause", None),
    ("POST", "/api/schedules/auth-table/resume", None),
    ("DELETE", "/api/schedules/auth-table", None),
]
# Every Ops API route: admin reaches it, the viewer only its GETs, the service token none.
OPS_ROUTES: list[tuple[str, str, object]] = [
    ("GET", "/api/queue/dead-letter?type=mail&limit=5", None),
    ("GET", "/api/queue/dead-letter/groups", None),
    ("GET", "/api/queue/dead-letter/some-entry", None),
    ("POST", "/api/queue/dead-letter/some-entry/retry", None),
    ("POST", "/api/queue/dead-letter/some-entry/review", {"note": "n"}),
    ("POST", "/api/queue/dead-letter/retry", {"dry_run": True}),
    ("DELETE", "/api/queue/dead-letter?older_than=3650d", None),
    ("GET", "/api/queue/mail/failed", None),
    ("GET", "/api/queue/audit", None),
]
SERVICE_ROUTES = ROUTES
ROUTES = SERVICE_ROUTES + OPS_ROUTES
ROUTE_IDS = [f"{m} {p}" for m, p, _ in ROUTES]
# The Ops API's queue routes (admin; the viewer reads). Pause is followed by resume, so the table
# leaves mail unpaused; clear without confirm changes nothing (400).
QUEUE_ROUTES: list[tuple[str, str, object]] = [
    ("GET", "/api/queue/stats", None),
    ("GET", "/api/queue/limits", None),
    ("GET", "/api/queue/alerts", None),
    ("GET", "/api/queue/metrics", None),
    ("GET", "/metrics", None),
    ("GET", "/api/queue/mail/jobs", None),
    ("POST", "/api/queue/mail/pause", None),
    ("POST", "/api/queue/mail/resume", None),
    ("DELETE", "/api/queue/mail/clear?status=scheduled", None),
]
QUEUE_IDS = [f"{m} {p}" for m, p, _ in QUEUE_ROUTES]


@pytest.mark.parametrize(("method", "path", "body"), QUEUE_ROUTES, ids=QUEUE_IDS)
def test_the_queue_routes_need_their_role(served: Served, method: str, path: str, body: object) -> None:
    assert call(served, method, path, body, {}).status_code == 401
    assert call(served, method, path, body, {"Authorization": f"Bearer {SERVICE}"}).status_code == 403
    viewer = call(served, method, path, body, {"Authorization": f"Bearer {VIEWER}"})
    assert viewer.status_code == (200 if method == "GET" else 403), viewer.text
    admin = call(served, method, path, body, {"Authorization": f"Bearer {ADMIN}"})
    assert admin.status_code == (400 if method == "DELETE" else 200), admin.text


@pytest.fixture(scope="module")
def served(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`serve` with the three tokens, and a brake above this table's failed attempts (each route is
    called without a token and with wrong ones; the brake itself: test_auth_brake_http.py). The
    brake's count is kept in Redis, which outlives the module: cleared at the end, so the next
    module's `serve` (20 a minute) does not hold 127.0.0.1 for this module's attempts."""
    s = serve(redis_url, tmp_path_factory.mktemp("serve") / "serve.log", API_AUTH_FAILURES_PER_MIN="1000")
    try:
        yield s
    finally:
        for key in list(s.redis.scan_iter(match=f"{keys.PREFIX}auth:*")):
            s.redis.delete(key)
        s.proc.stop()
        s.redis.close()


def call(served: Served, method: str, path: str, body: object, headers: dict[str, str]) -> httpx.Response:
    return httpx.request(method, served.url + path, json=body, headers=headers, timeout=60)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
def test_without_a_token_every_route_is_401_with_a_bearer_challenge(
    served: Served, method: str, path: str, body: object
) -> None:
    r = call(served, method, path, body, {})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = call(served, method, path, body, {"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = call(served, method, path, body, {"Authorization": f"Basic {ADMIN}"})
    assert r.status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
def test_the_viewer_token_reads_but_changes_nothing(served: Served, method: str, path: str, body: object) -> None:
    r = call(served, method, path, body, {"Authorization": f"Bearer {VIEWER}"})
    if method == "GET":
        assert r.status_code not in (401, 403), r.text
    else:
        assert r.status_code == 403, r.text
        assert "www-authenticate" not in r.headers


def test_the_service_and_admin_tokens_reach_every_service_route(served: Served) -> None:
    for token in (SERVICE, ADMIN):
        for method, path, body in SERVICE_ROUTES:
            r = call(served, method, path, body, {"Authorization": f"Bearer {token}"})
            assert r.status_code not in (401, 403), (method, path, r.status_code, r.text)
            assert r.status_code < 500, (method, path, r.text)


def test_the_admin_token_reaches_every_ops_route_and_the_service_token_none(served: Served) -> None:
    for method, path, body in OPS_ROUTES:
        r = call(served, method, path, body, {"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code not in (401, 403) and r.status_code < 500, (method, path, r.status_code, r.text)
        r = call(served, method, path, body, {"Authorization": f"Bearer {SERVICE}"})
        assert r.status_code == 403, (method, path, r.status_code, r.text)


def test_the_service_token_reaches_nothing_beyond_jobs_and_schedules(served: Served) -> None:
    r = call(served, "GET", "/api/queue/stats", None, {"Authorization": f"Bearer {SERVICE}"})
    assert r.status_code == 403
    r = call(served, "GET", "/api/queue/stats", None, {"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200


def test_health_and_the_webhooks_need_no_token(served: Served) -> None:
    assert httpx.get(f"{served.url}/api/queue/health").status_code == 200
    echo = httpx.post(f"{served.url}/webhooks/graph", params={"validationToken": "hand shake"})
    assert (echo.status_code, echo.text) == (200, "hand shake")


def test_a_token_is_never_logged(served: Served) -> None:
    call(served, "GET", "/api/jobs/x", None, {"Authorization": f"Bearer {ADMIN}"})
    call(served, "GET", "/api/jobs/x", None, {"Authorization": "Bearer guessed-token"})
    log = served.proc.output()
    assert ADMIN not in log and SERVICE not in log and VIEWER not in log and "guessed-token" not in log


@pytest.fixture(scope="module")
def tokenless(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = serve(redis_url, tmp_path_factory.mktemp("tokenless") / "serve.log", role="api", tokens=False)
    try:
        yield s
    finally:
        s.proc.stop()
        s.redis.close()


def test_with_no_token_configured_the_api_refuses_everyone_and_says_so_at_start(tokenless: Served) -> None:
    assert "API routes refuse every request (401)" in tokenless.proc.output()
    for method, path, body in ROUTES:
        r = call(tokenless, method, path, body, {"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 401, (method, path)
    assert httpx.get(f"{tokenless.url}/api/queue/health").status_code == 200
    # --role api serves no webhook receiver.
    r = httpx.post(f"{tokenless.url}/webhooks/graph", params={"validationToken": "t"})
    assert r.status_code != 200


def test_role_webhooks_serves_the_receiver_and_no_api(redis_url: str, tmp_path: Path) -> None:
    s = serve(redis_url, tmp_path / "serve.log", role="webhooks")
    try:
        echo = httpx.post(f"{s.url}/webhooks/graph", params={"validationToken": "t"})
        assert (echo.status_code, echo.text) == (200, "t")
        r = httpx.post(f"{s.url}/api/jobs/mail", json=MAIL, headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 404
        assert "API at" not in s.proc.output()
    finally:
        s.proc.stop()
        s.redis.close()
