"""`graphworks_queue_ready{type}` through real HTTP against `graphworks serve --role api` and a real
worker: jobs due now that no worker runs, without the paused type's parked jobs and the deferred
ones. It is what deploy/k8s/base/keda-scaledobject.yaml scales the workers on."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import redis
from prometheus_client.parser import text_string_to_metric_families

from graphsim.faults import Fault
from graphsim.server import SimServer
from tests.api.conftest import ADMIN, SERVICE, VIEWER, Served, serve, start
from tests.integration.processes import graphworks_env

LIMIT_S = 90.0
SLOW_S = 40.0  # the running job's Graph call: far longer than it takes to see it running


def until(what: Callable[[], str], check: Callable[[], bool], limit_s: float = LIMIT_S) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what()}")
        time.sleep(0.05)


def gauges(served: Served) -> dict[tuple[str, str, str], float]:
    """(family, type, state) -> value for the two depth families of one scrape."""
    with served.client(VIEWER) as http:
        r = http.get("/metrics")
    assert r.status_code == 200, r.text
    out = {}
    for family in text_string_to_metric_families(r.text):
        if family.name in ("graphworks_queue_ready", "graphworks_queue_depth"):
            for s in family.samples:
                out[(family.name, s.labels["type"], s.labels.get("state", ""))] = s.value
    return out


def ready(g: dict[tuple[str, str, str], float], job_type: str) -> float:
    return g[("graphworks_queue_ready", job_type, "")]


def queued(g: dict[tuple[str, str, str], float], job_type: str) -> float:
    return g[("graphworks_queue_depth", job_type, "queued")]


def test_ready_leaves_out_running_parked_and_deferred_jobs(redis_url: str, graphsim: SimServer, tmp_path: Path) -> None:
    with redis.Redis.from_url(redis_url) as fresh:
        fresh.flushdb()  # the session's Redis is shared: every figure below is this test's alone
    served = serve(redis_url, tmp_path / "serve.log", role="api")
    worker = None
    try:
        with served.client(ADMIN) as admin, served.client(SERVICE) as http:
            assert admin.post("/api/queue/mail/pause").status_code == 200
            mail = {"mailbox": "a@x.test", "to": ["b@x.test"], "subject": "s", "body": "b"}
            assert http.post("/api/jobs/mail", json=mail).status_code == 202  # parked at once
            for i in range(3):
                r = http.post("/api/jobs/teams_message", json={"chat_id": f"19:ready-{i}", "content": "m"})
                assert r.status_code == 202, r.text
            later = {"chat_id": "19:ready-later", "content": "m"}
            assert http.post("/api/jobs/teams_message?defer_s=3600", json=later).status_code == 202
        g = gauges(served)
        assert (ready(g, "teams_message"), queued(g, "teams_message")) == (3, 3)
        assert g[("graphworks_queue_depth", "teams_message", "scheduled")] == 1
        assert (ready(g, "mail"), queued(g, "mail")) == (0, 1)  # queued, but parked: no worker may take it

        # One worker, one job at a time, whose first Teams post hangs: one job runs, two wait.
        graphsim.state.add_fault(Fault(method="POST", path="/chats/*/messages", kind="slow", delay_s=SLOW_S))
        env = graphworks_env(redis_url, graphsim, WORKER_MAX_JOBS="1", WORKER_JOB_TIMEOUT_S="120",
                             GRAPH_CALL_TIMEOUT_S="50")  # fmt: skip
        worker = start(["worker"], env, tmp_path / "worker.log")

        seen: list[tuple[float, float]] = []

        def one_running() -> bool:
            g = gauges(served)
            seen.append((queued(g, "teams_message"), ready(g, "teams_message")))
            return seen[-1] == (3, 2)

        until(lambda: f"one teams_message job running, not ready; (queued, ready) seen: {seen[-3:]}", one_running)
        assert ready(gauges(served), "mail") == 0
    finally:
        if worker is not None:
            worker.stop()
        served.proc.stop()
        served.redis.flushdb()  # leave no paused type or half-run job to the modules after
        served.redis.close()
