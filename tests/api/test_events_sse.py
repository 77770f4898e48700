"""GET /api/queue/events: job transitions as Server-Sent Events from a real `serve`, resumable."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx

from tests.api.conftest import SERVICE, VIEWER, Proc, Served


def _events(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """SSE frames as dicts (comment lines skipped)."""
    frame: dict[str, str] = {}
    for line in lines:
        if not line:
            if frame:
                yield frame
            frame = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            frame[name] = value


def _until_completed(
    served: Served, job_id: str, headers: dict[str, str], params: dict[str, str] | None = None
) -> list[dict[str, str]]:
    seen = []
    url = f"{served.url}/api/queue/events"
    with httpx.stream("GET", url, headers=headers, params=params, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for frame in _events(r.iter_lines()):
            seen.append(frame)
            if json.loads(frame["data"])["id"] == job_id and frame["event"] == "completed":
                return seen
    raise AssertionError("the stream ended")


def test_a_completed_job_arrives_live_and_a_reconnect_resumes_after_the_last_id(served: Served, worker: Proc) -> None:
    viewer = {"Authorization": f"Bearer {VIEWER}"}
    with served.client(SERVICE) as http:
        first = http.post("/api/jobs/teams_message", json={"chat_id": f"c-{uuid.uuid4().hex[:6]}", "content": "a"})
        assert first.status_code == 202
    # since=0: from the start of what the stream keeps (the job may have ended before we connect).
    frames = _until_completed(served, first.json()["id"], viewer, {"since": "0"})
    # A reconnect with Last-Event-ID gets only what came after it, the second job's events included.
    last_id = frames[-1]["id"]
    with served.client(SERVICE) as http:
        second = http.post("/api/jobs/teams_message", json={"chat_id": f"c-{uuid.uuid4().hex[:6]}", "content": "b"})
    resumed = _until_completed(served, second.json()["id"], {**viewer, "Last-Event-ID": last_id})
    assert all(tuple(map(int, f["id"].split("-"))) > tuple(map(int, last_id.split("-"))) for f in resumed)
    record = json.loads(resumed[-1]["data"])
    assert record["status"] == "completed" and record["result"]["id"]
    with httpx.Client(base_url=served.url) as anonymous:
        assert anonymous.get("/api/queue/events").status_code == 401
        service = {"Authorization": f"Bearer {SERVICE}"}
        assert anonymous.get("/api/queue/events", headers=service).status_code == 403
        bad = anonymous.get("/api/queue/events", params={"since": "x"}, headers=viewer)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "since"]
