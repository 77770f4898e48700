"""The Ops API's queue routes over real HTTP: `graphworks serve`, a `graphworks worker`, graphsim.
Pause, resume, clear, stats, health, jobs per type, limits. Every wait is on a condition with a
generous limit, never a sleep standing in for time passing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphsim.server import SimServer
from graphworks_core import keys
from tests.api.conftest import (
    ADMIN,
    START_LIMIT_S,
    VIEWER,
    Proc,
    Served,
    api_env,
    serve,
    serving,
    start,
    with_db,
    working,
)
from tests.api.test_jobs_http import final_record

pytestmark = pytest.mark.slow

LIMIT_S = 120.0
OWN_DB = 3  # this module's own database on the session's Redis: no other module's backlog in its counts


@pytest.fixture(scope="module")
def own_redis_url(redis_url: str) -> str:
    return with_db(redis_url, OWN_DB)


@pytest.fixture(scope="module")
def served(own_redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(own_redis_url, tmp_path_factory) as s:
        yield s


@pytest.fixture(scope="module")
def worker(own_redis_url: str, graphsim_server: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    with working(own_redis_url, graphsim_server, tmp_path_factory) as proc:
        yield proc


def until(what: str, check: Callable[[], Any], limit_s: float = LIMIT_S) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"still not: {what}"
        time.sleep(0.05)


def mail(subject: str) -> dict[str, Any]:
    return {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": subject, "body": "b"}


def sent_subjects(sim: SimServer) -> list[str]:
    return [
        r.body["message"]["subject"]
        for r in sim.state.requests()
        if r.method == "POST" and r.path.endswith("/sendMail") and isinstance(r.body, dict)
    ]


def enqueue(http: httpx.Client, job_type: str, payload: dict[str, Any], **params: Any) -> str:
    r = http.post(f"/api/jobs/{job_type}", json=payload, params=params)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def type_stats(http: httpx.Client, job_type: str) -> dict[str, Any]:
    r = http.get("/api/queue/stats")
    assert r.status_code == 200, r.text
    return dict(r.json()["types"][job_type])


def audited(served: Served, action: str, target: str) -> list[dict[bytes, bytes]]:
    return [f for _, f in served.redis.xrevrange(keys.AUDIT, count=200)
            if f[b"action"] == action.encode() and f[b"target"] == target.encode()]  # fmt: skip


def workers_saw_paused(served: Served, job_type: str) -> bool:
    ids = [m.decode() for m in served.redis.smembers(keys.WORKERS)]
    records = [served.redis.get(keys.worker_jobs(i)) for i in ids]
    seen = [json.loads(r) for r in records if r is not None]
    return bool(seen) and all(job_type in s["paused"] for s in seen)


def test_a_paused_type_waits_while_another_runs_then_resumes_in_order_with_no_attempt_spent(
    served: Served, worker: Proc, graphsim: SimServer
) -> None:
    admin = served.client(ADMIN)
    r = admin.post("/api/queue/mail/pause")
    assert r.status_code == 200 and r.json()["paused"] is True, r.text
    until("the worker read the pause", lambda: workers_saw_paused(served, "mail"))
    tag = uuid.uuid4().hex[:8]
    # In order on one ordering key, parked at enqueue; and one due shortly, which the worker takes
    # from the queue once promoted and parks (same attempt).
    ordered = [enqueue(admin, "mail", mail(f"{tag}-{i}"), ordering_key=f"k-{tag}") for i in range(3)]
    later = enqueue(admin, "mail", mail(f"{tag}-later"), defer_s=0.3)
    other = enqueue(admin, "teams_message", {"chat_id": f"19:{tag}", "content": "runs meanwhile"})
    assert final_record(admin, other)["status"] == "completed"  # another type runs
    until("the due job parked", lambda: served.redis.zcard(keys.parked("mail")) == 2)  # the key's head + later
    for job_id in [*ordered, later]:
        record = admin.get(f"/api/jobs/{job_id}").json()
        assert record["status"] == "queued" and not record.get("attempts"), record
    assert not [s for s in sent_subjects(graphsim) if s.startswith(tag)]
    stats = type_stats(admin, "mail")
    assert stats["paused"] is True and stats["queued"] == 4 and stats["parked"] == 2 and stats["running"] == 0
    assert stats["oldest_queued_age_s"] is not None and stats["oldest_queued_age_s"] >= 0

    r = admin.post("/api/queue/mail/resume")
    assert r.status_code == 200 and r.json() == {"type": "mail", "paused": False, "requeued": 2}, r.text
    for job_id in [*ordered, later]:
        record = final_record(admin, job_id)
        assert record["status"] == "completed" and not record.get("attempts"), record
    mine = [s for s in sent_subjects(graphsim) if s.startswith(tag) and s != f"{tag}-later"]
    assert mine == [f"{tag}-0", f"{tag}-1", f"{tag}-2"]
    assert type_stats(admin, "mail")["paused"] is False
    assert audited(served, "queue.pause", "mail")[0][b"role"] == b"admin"
    assert audited(served, "queue.resume", "mail")[0][b"count"] == b"2"


def test_clear_needs_confirm_and_cancels_in_batches(served: Served, worker: Proc) -> None:
    admin = served.client(ADMIN)
    tag = uuid.uuid4().hex[:8]
    scheduled = [enqueue(admin, "mail", mail(f"{tag}-{i}"), defer_s=3600) for i in range(5)]
    before = type_stats(admin, "mail")["scheduled"]
    assert before >= 5
    for params in ({"status": "scheduled"}, {"status": "scheduled", "confirm": "teams_message"}):
        r = admin.delete("/api/queue/mail/clear", params=params)
        assert r.status_code == 400, r.text
    assert type_stats(admin, "mail")["scheduled"] == before  # nothing removed
    r = admin.delete("/api/queue/mail/clear", params={"status": "scheduled", "confirm": "mail"})
    assert r.status_code == 200 and r.json()["cleared"] == before, r.text
    for job_id in scheduled:
        assert admin.get(f"/api/jobs/{job_id}").json()["status"] == "cancelled"
    assert type_stats(admin, "mail")["scheduled"] == 0
    assert audited(served, "queue.clear", "mail")[0][b"count"] == str(before).encode()

    # Queued jobs of a paused type (parked): cleared too, and nothing is left to resume.
    assert admin.post("/api/queue/mail/pause").status_code == 200
    queued = [enqueue(admin, "mail", mail(f"{tag}-q{i}")) for i in range(3)]
    r = admin.delete("/api/queue/mail/clear", params={"status": "queued", "confirm": "mail"})
    assert r.status_code == 200 and r.json()["cleared"] == 3, r.text
    assert {admin.get(f"/api/jobs/{j}").json()["status"] for j in queued} == {"cancelled"}
    assert admin.post("/api/queue/mail/resume").json()["requeued"] == 0
    assert admin.delete("/api/queue/nope/clear", params={"status": "queued", "confirm": "nope"}).status_code == 404


def test_stats_match_what_was_enqueued_and_completed(served: Served, worker: Proc) -> None:
    admin = served.client(ADMIN)
    first = type_stats(admin, "teams_message")
    tag = uuid.uuid4().hex[:8]
    ids = [enqueue(admin, "teams_message", {"chat_id": f"19:{tag}-{i}", "content": "x"}) for i in range(4)]
    for job_id in ids:
        assert final_record(admin, job_id)["status"] == "completed"
    after = until("counted", lambda: (s := type_stats(admin, "teams_message"))["running"] == 0 and s)
    assert after["completed"] == first["completed"] + 4
    assert after["last_hour"]["completed"] == first["last_hour"]["completed"] + 4
    assert 0 < after["last_minute"]["completed"] <= after["last_hour"]["completed"]
    assert after["queued"] == 0 and after["oldest_queued_age_s"] is None
    body = admin.get("/api/queue/stats").json()
    assert set(body["dead_letter"]) == {"total", "unreviewed"} and isinstance(body["limits"], list)

    # The oldest queued job's age grows while its type is paused. (A mail job the test before
    # finished may still be listed by its worker as running for up to 0.5 s: it is not subtracted.)
    assert admin.post("/api/queue/mail/pause").status_code == 200
    try:
        held = enqueue(admin, "mail", mail(f"{tag}-old"))
        stats = type_stats(admin, "mail")
        assert stats["queued"] == 1 and stats["scheduled"] == 0 and stats["paused"] is True
        until("the age grows", lambda: type_stats(admin, "mail")["oldest_queued_age_s"] >= 0.5)
    finally:
        admin.post("/api/queue/mail/resume")
    assert final_record(admin, held)["status"] == "completed"


def test_jobs_per_type_newest_first_with_a_cursor(served: Served) -> None:
    admin = served.client(ADMIN)
    tag = uuid.uuid4().hex[:8]
    ids = [enqueue(admin, "mail", mail(f"{tag}-{i}"), defer_s=3600) for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"status": "scheduled", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = served.client(VIEWER).get("/api/queue/mail/jobs", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["jobs"]) <= 2 and all(j["status"] == "scheduled" for j in page["jobs"])
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [i for i in seen if i in ids] == list(reversed(ids))
    assert admin.get("/api/queue/nope/jobs").status_code == 404
    cleared = admin.delete("/api/queue/mail/clear", params={"status": "scheduled", "confirm": "mail"})
    assert cleared.json()["cleared"] >= 5


def test_limits_show_the_limiters_keys(served: Served, worker: Proc) -> None:
    admin = served.client(ADMIN)
    job = enqueue(admin, "teams_message", {"chat_id": f"19:limits-{uuid.uuid4().hex[:6]}", "content": "x"})
    assert final_record(admin, job)["status"] == "completed"
    r = served.client(VIEWER).get("/api/queue/limits")
    assert r.status_code == 200, r.text
    limits = r.json()["limits"]
    assert limits, "a Teams message goes through the limiter"
    assert set(limits[0]) >= {"key", "rate_per_s", "in_use", "waits", "cooldown_remaining_s", "throttled"}
    keys_in_stats = {k["key"] for k in admin.get("/api/queue/stats").json()["limits"]}
    assert {k["key"] for k in limits} >= keys_in_stats  # one source; stats shows the most recent 50


def test_health_ok_with_a_worker(served: Served, worker: Proc) -> None:
    until("the worker announced", lambda: served.redis.scard(keys.WORKERS) > 0)
    r = httpx.get(f"{served.url}/api/queue/health", timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["redis"] == "ok" and body["checks"]["redis"] == "ok"
    assert set(body["workers"][0]) == {"id", "host", "pid", "started_at", "last_seen_at", "running"}


def test_health_degraded_without_workers_and_down_without_redis(redis_url: str, tmp_path: Path) -> None:
    empty_db = with_db(redis_url, 7)
    s = serve(empty_db, tmp_path / "degraded.log")
    try:
        s.redis.delete(keys.WORKERS)
        r = httpx.get(f"{s.url}/api/queue/health", timeout=30)
        assert r.status_code == 200 and r.json()["status"] == "degraded" and r.json()["workers"] == [], r.text
    finally:
        s.proc.stop()
        s.redis.close()

    from graphworks.embedded_redis import free_port

    port = free_port()
    proc = start(["serve", "--port", str(port), "--role", "api"], api_env(f"redis://127.0.0.1:{free_port()}/0"),
                 tmp_path / "down.log")  # fmt: skip
    try:
        deadline = time.monotonic() + START_LIMIT_S

        def answered() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/queue/health", timeout=30)
            except httpx.TransportError:
                assert proc.process.poll() is None and time.monotonic() < deadline, proc.output()
                return None

        r = until("serve answers", answered)
        assert r.status_code == 503 and r.json()["status"] == "down", r.text
        assert r.json()["redis"].startswith("unreachable")
    finally:
        proc.stop()
