"""DESIGN.md's stable CLI forms, run as processes against Redis and graphsim named only by the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from graphsim.faults import Fault
from graphsim.server import SimServer

pytestmark = pytest.mark.slow

DLQ_FIELDS = {"id", "job_id", "type", "error_class", "status", "graph_code", "request_id", "attempts", "payload",
              "reviewed", "note"}  # fmt: skip


@pytest.fixture
def gw(redis: aioredis.Redis, redis_url: str, graphsim: SimServer):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH", "WORKER", "REDIS"))}
    env.update(REDIS_URL=redis_url, GRAPH_BASE_URL=graphsim.base_url, GRAPH_STATIC_TOKEN="cli-token")

    def run(*args: str, ok: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "graphworks", *args], env=env, input=stdin, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        if ok:
            assert proc.returncode == 0, f"{args}: {proc.stderr}"
        return proc

    run.env = env  # type: ignore[attr-defined]
    return run


def test_enqueue_work_and_inspect_through_the_cli(gw, graphsim: SimServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    teams_id = gw("enqueue", "teams-message", "--chat-id", "19:cli", "--content", "hi", "--sender", "u1",
                  "--importance", "urgent", "--priority", "9", "--idempotency-key", "t-1").stdout.strip()  # fmt: skip
    again = gw("enqueue", "teams-message", "--chat-id", "19:cli", "--content", "hi", "--idempotency-key", "t-1")
    assert again.stdout.strip() == teams_id and len(teams_id) == 32
    mail_id = gw("enqueue", "mail", "--mailbox", "ops@contoso.com", "--to", "a@contoso.com", "--to", "b@contoso.com",
                 "--subject", "S", "--body", "B", "--defer-s", "0").stdout.strip()  # fmt: skip
    graphsim.state.add_fault(Fault(method="POST", path="/users/bad@contoso.com/sendMail", status=400,
                                   graph_code="ErrorInvalidRecipients"))  # fmt: skip
    bad_id = gw("enqueue", "mail", "--mailbox", "bad@contoso.com", "--to", "x@contoso.com", "--subject", "S",
                "--body", "B").stdout.strip()  # fmt: skip

    gw("worker", "--burst")

    posts = {r.path: r for r in graphsim.state.requests() if r.status in (201, 202)}
    assert posts["/chats/19:cli/messages"].body["importance"] == "urgent"
    assert len(posts["/users/ops@contoso.com/sendMail"].body["message"]["toRecipients"]) == 2
    stats = json.loads(gw("stats", "--json").stdout)
    assert (stats["completed"], stats["dead_lettered"]) == (2, 1)
    assert mail_id != bad_id

    entries = json.loads(gw("dlq", "list", "--json").stdout)
    assert [e["id"] for e in entries] == [bad_id]
    assert set(entries[0]) >= DLQ_FIELDS
    assert entries[0]["error_class"] == "validation" and entries[0]["status"] == 400
    assert entries[0]["graph_code"] == "ErrorInvalidRecipients" and entries[0]["request_id"]
    assert set(entries[0]["attempts"][0]) >= {"at", "error_class", "status", "delay_s"}
    shown = json.loads(gw("dlq", "show", bad_id, "--json").stdout)
    assert shown["payload"]["mailbox"] == "bad@contoso.com"
    assert bad_id in gw("dlq", "show", bad_id).stdout

    gw("dlq", "review", bad_id, "--note", "recipient fixed upstream")
    assert json.loads(gw("dlq", "show", bad_id, "--json").stdout)["reviewed"] is True
    export = tmp_path / "dlq.jsonl"
    gw("dlq", "export", "--out", str(export))
    assert json.loads(export.read_text().splitlines()[0])["note"] == "recipient fixed upstream"

    assert gw("dlq", "retry", bad_id).stdout.strip() == bad_id
    gw("worker", "--burst")
    assert json.loads(gw("dlq", "list", "--json").stdout) == []
    assert json.loads(gw("stats", "--json").stdout)["completed"] == 3


def test_bulk_file_is_all_or_nothing(gw, redis_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = [
        {"type": "teams_message", "payload": {"chat_id": "19:a", "content": "x"}, "priority": 7},
        {"type": "teams_message", "payload": {"team_id": "t", "channel_id": "c", "content": "x"}},
        {"type": "mail", "payload": {"mailbox": "m@c.com", "to": ["a@c.com"], "subject": "s", "body": "b"},
         "idempotency_key": "bulk-1", "defer_s": 5},
    ]  # fmt: skip
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps(j) + "\n" for j in good))
    ids = gw("enqueue", "--file", str(jobs)).stdout.split()
    assert len(ids) == 3 and len(set(ids)) == 3

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(good[0]) + "\n" + json.dumps({"type": "mail", "payload": {"mailbox": "m"}}) + "\n")
    proc = gw("enqueue", "--file", str(bad), ok=False)
    assert proc.returncode != 0 and "line 2" in proc.stderr and "to" in proc.stderr
    notjson = tmp_path / "notjson.jsonl"
    notjson.write_text(json.dumps(good[0]) + "\n{oops\n")
    proc = gw("enqueue", "--file", str(notjson), ok=False)
    assert proc.returncode != 0 and "line 2" in proc.stderr
    stats = json.loads(gw("stats", "--json").stdout)
    assert stats["queued"] + stats["scheduled"] == 3, "a bad file must enqueue nothing"


def test_bad_input_and_bad_settings_say_what_is_wrong(gw) -> None:  # type: ignore[no-untyped-def]
    proc = gw("enqueue", "mail", "--mailbox", "m@c.com", "--to", "nope", "--subject", "s", "--body", "b", ok=False)
    assert proc.returncode == 1 and "to.0" in proc.stderr
    proc = gw("enqueue", "teams-message", "--content", "x", ok=False)
    assert "chat_id" in proc.stderr
    proc = gw("dlq", "show", "missing", ok=False)
    assert "no dead-letter entry missing" in proc.stderr


def test_jobs_show_wait_cancel_and_list_through_the_cli(gw, graphsim: SimServer) -> None:  # type: ignore[no-untyped-def]
    sent = gw("enqueue", "teams-message", "--chat-id", "19:jobs", "--content", "hi").stdout.strip()
    later = gw("enqueue", "mail", "--mailbox", "ops@contoso.com", "--to", "a@contoso.com", "--subject", "S",
               "--body", "B", "--defer-s", "3600").stdout.strip()  # fmt: skip
    assert json.loads(gw("jobs", "show", sent, "--json").stdout)["status"] == "queued"
    timed_out = gw("jobs", "wait", sent, "--timeout", "0.2", ok=False)
    assert timed_out.returncode == 3 and "still queued" in timed_out.stderr

    worker = subprocess.Popen([sys.executable, "-m", "graphworks", "worker"], env=gw.env,  # type: ignore[attr-defined]
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        done = json.loads(gw("jobs", "wait", sent, "--timeout", "30", "--json").stdout)
    finally:
        worker.kill()
        worker.wait(10)
    assert done["status"] == "completed"
    created = graphsim.state.chat_message("19:jobs", done["result"]["id"])
    assert created is not None and created["body"]["content"] == "hi"

    assert gw("jobs", "cancel", later).stdout.strip() == f"cancelled {later}"
    refused = gw("jobs", "cancel", sent, ok=False)
    assert refused.returncode == 1 and "completed" in refused.stderr
    assert gw("jobs", "wait", later, ok=False).returncode == 1  # cancelled
    listed = json.loads(gw("jobs", "list", "--json").stdout)
    assert [(j["id"], j["status"]) for j in listed["jobs"]] == [(later, "cancelled"), (sent, "completed")]
    human = gw("jobs", "show", sent).stdout
    assert "completed" in human and done["result"]["id"] in human
