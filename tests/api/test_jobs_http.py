"""The Service API's job routes over real HTTP: `graphworks serve --role all`, a `graphworks worker`,
graphsim. Every wait is on a condition (a long poll), never a sleep."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from graphsim.server import SimServer
from tests.api.conftest import Proc, Served, stored

pytestmark = pytest.mark.slow

FINAL = {"completed", "dead_lettered", "cancelled"}


def final_record(http: httpx.Client, job_id: str, limit_s: float = 120.0) -> dict[str, Any]:
    """Long-poll the job until it ends (each poll held by the server, not a loop of ours)."""
    deadline = time.monotonic() + limit_s
    while True:
        r = http.get(f"/api/jobs/{job_id}", params={"wait": 30})
        assert r.status_code == 200, r.text
        if r.json()["status"] in FINAL:
            return dict(r.json())
        assert time.monotonic() < deadline, f"job {job_id} still {r.json()['status']}"


def sent_contents(sim: SimServer, chat_id: str) -> list[str]:
    return [
        r.body["body"]["content"]
        for r in sim.state.requests()
        if r.method == "POST" and r.path == f"/chats/{chat_id}/messages" and isinstance(r.body, dict)
    ]


def test_a_teams_message_over_http_is_waited_for_and_its_result_is_the_message_graphsim_created(
    served: Served, worker: Proc, graphsim_server: SimServer
) -> None:
    chat = f"chat-{uuid.uuid4().hex[:8]}"
    with served.client() as http:
        r = http.post("/api/jobs/teams_message", json={"chat_id": chat, "content": "hello over HTTP"})
        assert r.status_code == 202, r.text
        accepted = r.json()
        assert accepted["type"] == "teams_message" and accepted["status"] == "queued"
        assert accepted["duplicate"] is False
        assert r.headers["location"] == f"/api/jobs/{accepted['id']}"

        record = final_record(http, accepted["id"])
        assert record["status"] == "completed", (record, worker.output())
        message_id = record["result"]["id"]
        created = graphsim_server.state.chat_message(chat, message_id)
        assert created is not None, f"graphsim has no message {message_id} in {chat}"
        assert created["body"]["content"] == "hello over HTTP"
        assert record["result"].get("web_url") == created["webUrl"]  # (graphsim gives chat messages none)

        # A completed job cannot be cancelled; the answer says why, with the record.
        r = http.delete(f"/api/jobs/{accepted['id']}")
        assert r.status_code == 409, r.text
        assert r.json()["status"] == "completed" and r.json()["record"]["id"] == accepted["id"]

        # ?wait= over 60 is held to 60, not refused: an ended job answers at once.
        started = time.monotonic()
        r = http.get(f"/api/jobs/{accepted['id']}", params={"wait": 61})
        assert r.status_code == 200 and r.json()["status"] == "completed"
        assert time.monotonic() - started < 30

        listed = http.get("/api/jobs", params={"type": "teams_message", "status": "completed", "limit": 500})
        assert listed.status_code == 200
        assert accepted["id"] in [j["id"] for j in listed.json()["jobs"]]


def test_a_deferred_job_cancelled_over_http_never_reaches_graphsim(
    served: Served, worker: Proc, graphsim_server: SimServer
) -> None:
    chat = f"chat-{uuid.uuid4().hex[:8]}"
    with served.client() as http:
        r = http.post("/api/jobs/teams_message", params={"defer_s": 3}, json={"chat_id": chat, "content": "never"})
        assert r.status_code == 202 and r.json()["status"] == "scheduled", r.text
        doomed = r.json()["id"]
        r = http.delete(f"/api/jobs/{doomed}")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled"
        # A later job to the same chat, due after the cancelled one would have been: once it has
        # run, the cancelled one had its chance.
        r = http.post("/api/jobs/teams_message", params={"defer_s": 4}, json={"chat_id": chat, "content": "later"})
        assert r.status_code == 202, r.text
        assert final_record(http, r.json()["id"])["status"] == "completed", worker.output()
        assert http.get(f"/api/jobs/{doomed}").json()["status"] == "cancelled"
        again = http.delete(f"/api/jobs/{doomed}")
        assert again.status_code == 409 and again.json()["status"] == "cancelled"
    assert sent_contents(graphsim_server, chat) == ["later"]


def test_bad_requests_are_refused_and_store_nothing(served: Served) -> None:
    before = stored(served.redis)
    with served.client() as http:
        r = http.post("/api/jobs/teams_message", json={"chat_id": "c-1"})
        assert r.status_code == 422
        assert r.json() == {"detail": [{"loc": ["body", "content"], "msg": "Field required", "type": "missing"}]}

        r = http.post("/api/jobs/mail", json={"mailbox": "ops@contoso.com", "to": ["not-an-address"], "subject": "s",
                                              "body": "b"})  # fmt: skip
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "to", 0]

        r = http.post("/api/jobs/teams_message", params={"priority": 11}, json={"chat_id": "c", "content": "x"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "priority"]

        r = http.post("/api/jobs/no_such_type", json={"chat_id": "c", "content": "x"})
        assert r.status_code == 404 and "no_such_type" in r.json()["detail"]

        r = http.post("/api/jobs/teams_message", content=b"chat_id=c&content=x",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert r.status_code == 415, r.text

        r = http.post(
            "/api/jobs/teams_message", content=b'{"chat_id": "c", ', headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"

        big = {"chat_id": "c", "content": "x" * (5 * 1024 * 1024)}  # over API_MAX_BODY_BYTES (4 MiB)
        r = http.post("/api/jobs/teams_message", json=big)
        assert r.status_code == 413, r.text

        # Bulk: all or nothing; the error names the bad item's index and field.
        no_body = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "s"}
        jobs = [{"type": "teams_message", "payload": {"chat_id": "c", "content": "fine"}},
                {"type": "mail", "payload": no_body}]  # fmt: skip
        r = http.post("/api/jobs", json={"jobs": jobs})
        assert r.status_code == 422
        assert [p["loc"] for p in r.json()["detail"]] == [["body", "jobs", 1, "mail", "payload", "body"]]
        r = http.post("/api/jobs", json={"jobs": [jobs[0], {"type": "nope", "payload": {}}]})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "jobs", 1]

        r = http.put("/api/schedules/bad-cron", json={"cron": "61 * * * *", "type": "sync",
                                                      "payload": {"resource": "mail", "owner": "u-1"}})  # fmt: skip
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "cron"], r.text

        assert http.get("/api/jobs/no-such-job").status_code == 404
        assert http.delete("/api/jobs/no-such-job").status_code == 404
    assert stored(served.redis) == before


def test_an_idempotency_key_reused_with_another_payload_is_409_and_the_first_job_stays(
    served: Served, worker: Proc, graphsim_server: SimServer
) -> None:
    chat = f"chat-{uuid.uuid4().hex[:8]}"
    key = {"Idempotency-Key": f"order-{uuid.uuid4().hex}"}
    with served.client() as http:
        first = http.post("/api/jobs/teams_message", headers=key, json={"chat_id": chat, "content": "first"})
        assert first.status_code == 202
        job_id = first.json()["id"]
        same = http.post("/api/jobs/teams_message", headers=key, json={"chat_id": chat, "content": "first"})
        assert same.status_code == 202 and same.json()["id"] == job_id and same.json()["duplicate"] is True
        other = http.post("/api/jobs/teams_message", headers=key, json={"chat_id": chat, "content": "second"})
        assert other.status_code == 409, other.text
        assert other.json()["job_id"] == job_id
        record = final_record(http, job_id)
        assert record["status"] == "completed" and record["idempotency_key"] == key["Idempotency-Key"]
    assert sent_contents(graphsim_server, chat) == ["first"]


def test_a_bulk_enqueue_answers_each_job(served: Served, worker: Proc) -> None:
    chat = f"chat-{uuid.uuid4().hex[:8]}"
    jobs = [
        {"type": "teams_message", "payload": {"chat_id": chat, "content": f"m{i}"}, "priority": 7} for i in range(3)
    ]
    with served.client() as http:
        r = http.post("/api/jobs", json={"jobs": jobs})
        assert r.status_code == 202, r.text
        answered = r.json()["jobs"]
        assert [(j["type"], j["status"], j["duplicate"]) for j in answered] == [("teams_message", "queued", False)] * 3
        records = [final_record(http, j["id"]) for j in answered]
    assert [(rec["status"], rec["priority"]) for rec in records] == [("completed", 7)] * 3


def test_schedules_over_http(served: Served) -> None:
    name = f"nightly-{uuid.uuid4().hex[:6]}"
    spec = {"cron": "0 3 * * *", "type": "sync", "payload": {"resource": "mail", "owner": "u-1"},
            "timezone": "Europe/Berlin"}  # fmt: skip
    with served.client() as http:
        r = http.put(f"/api/schedules/{name}", json=spec)
        assert r.status_code == 200, r.text
        assert r.json()["name"] == name and r.json()["next_run_at"] is not None
        assert http.get(f"/api/schedules/{name}").json()["cron"] == "0 3 * * *"
        assert name in [s["name"] for s in http.get("/api/schedules").json()]
        paused = http.post(f"/api/schedules/{name}/pause")
        assert paused.status_code == 200 and paused.json()["paused"] is True and paused.json()["next_run_at"] is None
        resumed = http.post(f"/api/schedules/{name}/resume")
        assert resumed.status_code == 200 and resumed.json()["paused"] is False
        r = http.put(f"/api/schedules/{name}", json={**spec, "every_s": 60})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "every_s"]
        assert http.delete(f"/api/schedules/{name}").status_code == 204
        assert http.get(f"/api/schedules/{name}").status_code == 404
        assert http.delete(f"/api/schedules/{name}").status_code == 404
        assert http.post(f"/api/schedules/{name}/pause").status_code == 404


def test_openapi_is_served_valid_and_describes_each_payload(served: Served) -> None:
    from openapi_spec_validator import validate

    r = httpx.get(f"{served.url}/api/openapi.json")  # no token: the description holds no data
    assert r.status_code == 200
    spec = r.json()
    validate(spec)
    body = spec["paths"]["/api/jobs/teams_message"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"] == "#/components/schemas/TeamsMessage"
    assert "chat_id" in spec["components"]["schemas"]["TeamsMessage"]["properties"]
    scheme = spec["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert spec["security"] == [{"bearer": []}]
    assert spec["paths"]["/api/queue/health"]["get"]["security"] == []
    for path in ("/api/jobs", "/api/jobs/{job_id}", "/api/schedules/{name}", "/api/schedules/{name}/pause"):
        assert path in spec["paths"]
