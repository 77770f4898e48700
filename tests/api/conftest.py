"""Real processes for the Service API tests: `graphworks serve` (and, where jobs must run, a
`graphworks worker`) against the session's redis-server and graphsim, one set per test module.
Tests talk to them with httpx as curl would."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from graphsim.server import SimServer
from graphworks.embedded_redis import free_port
from graphworks_core import keys
from tests.integration.processes import graphworks_env

ADMIN, SERVICE, VIEWER = "admin-secret-1", "service-secret-2", "viewer-secret-3"
START_LIMIT_S = 60.0  # a loaded 2-core machine may take a while to import and bind


@dataclass
class Proc:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start(args: list[str], env: dict[str, str], log: Path) -> Proc:
    """`graphworks ARGS` with its output in `log` (a pipe nobody reads could fill and stall it)."""
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "graphworks", *args], env=env, stdout=out, stderr=out)
    return Proc(process, log)


def api_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ADMIN_TOKEN", "SERVICE_TOKEN", "VIEWER_TOKEN")}
    env.update(REDIS_URL=redis_url, GRAPH_STATIC_TOKEN="test-token", **extra)
    return env


@dataclass
class Served:
    """A running `graphworks serve`: its base URL, process, and the Redis it uses."""

    url: str
    proc: Proc
    redis: redis.Redis

    def client(self, token: str | None = SERVICE) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=90)


def serve(
    redis_url: str, log: Path, *, role: str = "all", tokens: bool = True, port: int | None = None, **extra: str
) -> Served:
    port = port or free_port()
    env = api_env(redis_url, **extra)
    if tokens:
        env.update(ADMIN_TOKEN=ADMIN, SERVICE_TOKEN=SERVICE, VIEWER_TOKEN=VIEWER)
    proc = start(["serve", "--port", str(port), "--role", role], env, log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_LIMIT_S
    while True:
        try:
            if httpx.get(f"{url}/api/queue/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.process.poll() is not None or time.monotonic() > deadline:
            proc.stop()
            raise AssertionError(f"serve did not start:\n{proc.output()}")
        time.sleep(0.05)
    return Served(url, proc, redis.Redis.from_url(redis_url))


def with_db(url: str, db: int) -> str:
    """`url` on database `db` of the same server, flushed: a module's own, free of others' backlogs."""
    own = f"{url.rsplit('/', 1)[0]}/{db}" if url.count("/") > 2 else f"{url}/{db}"
    with redis.Redis.from_url(own) as r:
        r.flushdb()
    return own


@contextlib.contextmanager
def serving(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`graphworks serve --role all` with all three tokens set, stopped on exit."""
    s = serve(redis_url, tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield s
    finally:
        s.proc.stop()
        s.redis.close()


@contextlib.contextmanager
def working(redis_url: str, sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """A `graphworks worker` process running jobs against graphsim, stopped on exit."""
    proc = start(["worker"], graphworks_env(redis_url, sim), tmp_path_factory.mktemp("worker") / "w.log")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def served(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(redis_url, tmp_path_factory) as s:
        yield s


@pytest.fixture(scope="module")
def worker(redis_url: str, graphsim_server: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    with working(redis_url, graphsim_server, tmp_path_factory) as proc:
        yield proc


def stored(r: redis.Redis) -> dict[str, Any]:
    """What an enqueue writes: status records, idempotency keys, the queues, the type indexes."""
    return {
        "records": sorted(k for k in r.scan_iter(keys.job_status("*")) if k.count(b":") == 2),
        "idempotency": sorted(r.scan_iter(keys.idempotency("*"))),
        "queued": r.zcard(keys.queue()),
        "scheduled": r.zcard(keys.scheduled()),
        "indexes": {k: r.zcard(k) for k in sorted(r.scan_iter(keys.jobs_index("*")))},
        "schedules": r.hgetall(keys.SCHEDULES),
    }
