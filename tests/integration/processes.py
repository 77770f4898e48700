"""Real processes for the fault tests: `graphworks` commands, and a redis-server of a test's own
on an AOF directory that the test can SIGKILL and start again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from graphsim.server import SimServer
from graphworks.embedded_redis import free_port, redis_server_binary
from graphworks_core import keys


def is_cron_run(arq_id: bytes | str) -> bool:
    """A worker's own cron run in the arq queue (`cron:<name>:<time>`: a worker enqueues the index
    trim at :00 and :30), not a job: it has no envelope, and a test crossing the half hour meets it."""
    return (arq_id.decode() if isinstance(arq_id, bytes) else arq_id).startswith("cron:")


async def jobs_queued(redis: Any) -> int:
    """The arq queue's members but the workers' cron runs: what a test enqueued and is still waiting."""
    return sum(1 for m in await redis.zrange(keys.queue(), 0, -1) if not is_cron_run(m))


def graphworks_env(redis_url: str, sim: SimServer, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        REDIS_URL=redis_url,
        GRAPH_BASE_URL=sim.base_url,
        GRAPH_STATIC_TOKEN="test-token",
        WORKER_JOB_TIMEOUT_S="10",
        GRAPH_CALL_TIMEOUT_S="3",
        WORKER_LEASE_S="3",
        REDIS_SOCKET_TIMEOUT_S="1",
        WORKER_SHUTDOWN_GRACE_S="2",
    )
    env.update(extra)
    return env


def graphworks(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "graphworks", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


class AofRedis:
    """A redis-server with `appendfsync always` in `directory`, killable and restartable on it."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> AofRedis:
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        client = redis.Redis(port=self.port, socket_timeout=1)
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
            except redis.BusyLoadingError:  # replaying its AOF
                time.sleep(0.02)
        client.close()
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
