"""/metrics and the alerts through real HTTP against a real `graphworks serve` and worker: a scrape
parsed by prometheus-client's parser matching `graphworks stats --json`, `promtool check metrics`
clean on it, and an alert (a paused type's oldest queued job too old) that fires and resolves,
posted to graphsim's Teams chat exactly once each way."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from graphsim.server import SimServer
from tests.api.conftest import ADMIN, SERVICE, VIEWER, Proc, Served, serve, start
from tests.integration.processes import graphworks_env

CHAT = "19:alerts-chat"
LIMIT_S = 90.0
NAMES = {
    "graphworks_jobs", "graphworks_job_duration_seconds", "graphworks_job_wait_seconds", "graphworks_queue_depth",
    "graphworks_queue_oldest_age_seconds", "graphworks_dead_letter_entries", "graphworks_graph_requests",
    "graphworks_graph_throttled", "graphworks_limiter_cooldowns", "graphworks_webhook_notifications",
    "graphworks_workers", "graphworks_alerts_active",
}  # fmt: skip


def until(what: str, check: Callable[[], object], limit_s: float = LIMIT_S) -> object:
    deadline = time.monotonic() + limit_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def setup(
    redis_url: str, graphsim_server: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, Proc, Path]]:
    d = tmp_path_factory.mktemp("metrics")
    config = d / "graphworks.toml"
    config.write_text(
        "[alerts]\nevaluate_every_s = 0.5\noldest_queued_age_s = 1.0\nbacklog = 1000\n"
        "dead_letters_total = 1000\nsubscription_expiry_s = 1\n"
    )
    extra = {"GRAPHWORKS_CONFIG": str(config), "ALERT_TEAMS_CHAT_ID": CHAT}
    # The session's Redis is shared with the modules before: start from an empty one, so every
    # figure compared below is this module's alone.
    with redis.Redis.from_url(redis_url) as fresh:
        fresh.flushdb()
    served = serve(redis_url, d / "serve.log", **extra)
    env = graphworks_env(redis_url, graphsim_server, **extra)
    worker = start(["worker"], env, d / "worker.log")
    try:
        yield served, worker, d
    finally:
        worker.stop()
        served.proc.stop()
        served.redis.close()


def posts(sim: SimServer, about: str = "oldest_queued_age_s:mail") -> list[str]:
    chat = sim.state._chat  # (chat id, message id) -> message; graphsim keeps no per-chat listing
    ordered = sorted(chat.items(), key=lambda kv: str(kv[1].get("createdDateTime")))
    return [m["body"]["content"] for (c, _), m in ordered if c == CHAT and about in m["body"]["content"]]


def scrape(served: Served, token: str = VIEWER) -> str:
    with served.client(token) as http:
        r = http.get("/metrics")
    assert r.status_code == 200, r.text
    return r.text


def test_metrics_needs_viewer_or_admin(setup: tuple[Served, Proc, Path]) -> None:
    served, _, _ = setup
    assert httpx.get(f"{served.url}/metrics").status_code == 401
    with served.client(SERVICE) as http:
        assert http.get("/metrics").status_code == 403
    scrape(served, ADMIN)


def test_scrape_matches_stats_and_promtool(setup: tuple[Served, Proc, Path], tmp_path: Path) -> None:
    served, _, _ = setup

    def done() -> int:
        return int(served.redis.hget("graphworks:stats", "completed:type:teams_message") or 0)

    before = done()  # other modules share this Redis: count from here
    with served.client(SERVICE) as http:
        for i in range(5):
            r = http.post("/api/jobs/teams_message", json={"chat_id": "19:metrics", "content": f"m{i}"})
            assert r.status_code == 202, r.text
    until("5 completed", lambda: done() >= before + 5)
    # Alert posts (teams_message jobs too) may complete between a stats read and a scrape: compare
    # the two once they read the same moment, i.e. until a scrape taken right after stats agrees.
    until("a scrape that matches stats", lambda: _scrape_matches_stats(served), 60)
    until("request counts flushed", lambda: 'api="teams.chat_post",status_class="2xx"' in scrape(served), 20)
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (./dev test does when it can)"
    check = subprocess.run([promtool, "check", "metrics"], input=scrape(served).encode(), capture_output=True)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check


def _scrape_matches_stats(served: Served) -> bool:
    cmd = [sys.executable, "-m", "graphworks", "stats", "--json"]
    stats = json.loads(subprocess.run(cmd, capture_output=True, check=True, env=_stats_env(served)).stdout)
    text = scrape(served)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) >= NAMES, NAMES - set(families)
    jobs = {(s.labels["type"], s.labels["outcome"]): s.value for s in families["graphworks_jobs"].samples}
    completed = stats["by_type"]["teams_message"]["completed"]
    run = {(s.name, s.labels.get("le")): s.value for s in families["graphworks_job_duration_seconds"].samples
           if s.labels["type"] == "teams_message"}  # fmt: skip
    wait = [s for s in families["graphworks_job_wait_seconds"].samples if s.name.endswith("_count")]
    queued = sum(s.value for s in families["graphworks_queue_depth"].samples if s.labels["state"] == "queued")
    return (
        jobs[("teams_message", "completed")] == completed >= 5
        and run[("graphworks_job_duration_seconds_count", None)] == completed  # no retries here
        and run[("graphworks_job_duration_seconds_bucket", "+Inf")] == completed
        and sum(s.value for s in wait if s.labels["type"] == "teams_message") == completed
        and queued == stats["queued"]
        and families["graphworks_workers"].samples[0].value == 1
    )


def _stats_env(served: Served) -> dict[str, str]:
    import os

    kw = served.redis.connection_pool.connection_kwargs
    return {**os.environ, "REDIS_URL": f"redis://{kw['host']}:{kw['port']}/{kw.get('db', 0)}"}


def test_an_old_queued_job_fires_and_resolves_once_each_way(
    setup: tuple[Served, Proc, Path], graphsim_server: SimServer
) -> None:
    served, _, _ = setup
    with served.client(ADMIN) as http:
        assert http.post("/api/queue/mail/pause").status_code == 200
        r = http.post("/api/jobs/mail", json={"mailbox": "a@x.test", "to": ["b@x.test"], "subject": "s", "body": "b"})
        assert r.status_code == 202, r.text

        def firing() -> object:
            active = http.get("/api/queue/alerts").json()
            return [a for a in active if a["id"] == "oldest_queued_age_s:mail"]

        until("the alert firing", firing)
        # At least mail's: the alert posts are Teams jobs at Teams' 1 rps per chat, so teams_message
        # may have a job queued past the 1 s threshold too (the gauge counts per name and level).
        active = [s.value for f in text_string_to_metric_families(scrape(served)) for s in f.samples
                  if s.name == "graphworks_alerts_active" and s.labels == {"name": "oldest_queued_age_s",
                                                                          "level": "warning"}]  # fmt: skip
        assert active and active[0] >= 1
        until("the firing post", lambda: len(posts(graphsim_server)) >= 1)
        assert "FIRING" in posts(graphsim_server)[0]
        assert http.post("/api/queue/mail/resume").status_code == 200
        until("the alert resolved", lambda: not firing())
        until("the resolved post", lambda: len(posts(graphsim_server)) >= 2)
        cli = subprocess.run([sys.executable, "-m", "graphworks", "alerts", "--json"], capture_output=True,
                             env=_stats_env(served), check=True)  # fmt: skip
        assert not [a for a in json.loads(cli.stdout) if a["name"] == "oldest_queued_age_s"]
    # Several more evaluations pass; nothing is sent again.
    seen = served.redis.get("graphworks:alerts:active:evaluated_at")
    until("two more evaluations", lambda: served.redis.get("graphworks:alerts:active:evaluated_at") != seen)
    sent = posts(graphsim_server)
    assert len(sent) == 2, sent
    assert "FIRING" in sent[0] and "RESOLVED" in sent[1]
