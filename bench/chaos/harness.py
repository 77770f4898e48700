"""Real processes and the figures they leave behind, for the fault suite (bench/chaos/run.py).

- `AofRedis`: a redis-server with `appendfsync always` on a directory of its own, that a case can
  SIGKILL and start again on the same AOF (copied from tests/integration/processes.py: benches do
  not import tests/).
- `Worker` / `WorkerPool`: `python -m graphworks worker` processes, each logging to a file of its own
  (a pipe would fill up and block the worker; a file survives a SIGKILL intact).
- `Outcome` / `outcomes()`: the runner's `job=<id> type=<t> attempt=<n> outcome=<o>` lines, timed.
- `Sim`: graphsim served in this process over HTTP, with helpers reading its request log.
- `Monitor`: a Redis client for the figures (stats, in-progress keys, dead letters) that never hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from graphsim.server import SimServer, run_in_thread
from graphworks.embedded_redis import free_port, redis_server_binary
from graphworks_core import keys
from worker.stats import Stats, StatsSnapshot

ROOT = Path(__file__).resolve().parents[2]
MAILBOX = "ops@contoso.com"

# -- redis-server on an AOF directory -------------------------------------------------------------


class AofRedis:
    """A redis-server with `appendfsync always` in `directory`, killable and restartable on it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 30.0) -> AofRedis:
        """Start the server (again) and return once it answers PING, its AOF replayed."""
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no",
             "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.BusyLoadingError:  # replaying its AOF
                    pass
                except redis.ConnectionError:
                    if self.process.poll() is not None:
                        raise RuntimeError(f"redis-server exited with {self.process.returncode}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer within {timeout_s} s")
                time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync (appendfsync always has written every write already)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        self.kill()


# -- graphsim ---------------------------------------------------------------------------------------


class Sim:
    """graphsim over HTTP in a daemon thread of this process; reads of its request log."""

    def __init__(self) -> None:
        self.server: SimServer = run_in_thread()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self) -> None:
        self.server.stop()

    def mail_sends(self) -> Counter[str]:
        """Accepted sendMail requests (202) per subject."""
        return Counter(
            r.body["message"]["subject"]
            for r in self.server.state.requests()
            if r.method == "POST" and r.path.endswith("/sendMail") and r.status == 202
        )

    def chat_posts(self) -> dict[str, list[str]]:
        """Per chat id, the contents of accepted posts (201) in the order graphsim accepted them."""
        posted: dict[str, list[str]] = {}
        for r in self.server.state.requests():
            if r.method == "POST" and r.path.startswith("/chats/") and r.path.endswith("/messages") and r.status == 201:
                posted.setdefault(r.path.split("/")[2], []).append(r.body["body"]["content"])
        return posted

    def count(self, method: str, path_prefix: str) -> int:
        return sum(1 for r in self.server.state.requests() if r.method == method and r.path.startswith(path_prefix))


# -- worker processes -------------------------------------------------------------------------------


def worker_env(redis_url: str, graph_base_url: str, **extra: str) -> dict[str, str]:
    """The environment of a graphworks process in the suite; `extra` wins."""
    env = dict(os.environ)
    env.update(
        REDIS_URL=redis_url,
        GRAPH_BASE_URL=graph_base_url,
        GRAPH_STATIC_TOKEN="t",
        LOG_LEVEL="INFO",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
    )
    env.update(extra)
    return env


class Worker:
    """One `python -m graphworks worker` process logging to `log_path`."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "graphworks", "worker"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.started_at = time.time()
        self.exited_at: float | None = None
        """When an exit was first seen (by `alive`, `wait` or `WorkerPool.watch`)."""

    @property
    def alive(self) -> bool:
        if self.process.poll() is None:
            return True
        self.exited_at = self.exited_at or time.time()
        return False

    def alive_at(self, t: float) -> bool:
        return self.started_at <= t and (self.exited_at is None or t < self.exited_at)

    def kill(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.exited_at = self.exited_at or time.time()
        self._log.close()

    def terminate(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGTERM)

    async def wait(self, timeout_s: float) -> int | None:
        """The exit code, or None if it is still running after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            code = self.process.poll()
            if code is not None or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        if code is not None:
            self.exited_at = self.exited_at or time.time()
            self._log.close()
        return code

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class WorkerPool:
    """Worker processes sharing one environment; replaced ones are kept for their logs."""

    env: dict[str, str]
    log_dir: Path
    running: list[Worker] = field(default_factory=list)
    retired: list[Worker] = field(default_factory=list)
    _started: int = 0

    def start(self, n: int = 1) -> list[Worker]:
        new = []
        for _ in range(n):
            self._started += 1
            name = f"w{self._started}"
            new.append(Worker(name, self.env, self.log_dir / f"{name}.log"))
        self.running.extend(new)
        return new

    def retire(self, worker: Worker) -> None:
        self.running.remove(worker)
        self.retired.append(worker)

    @property
    def every(self) -> list[Worker]:
        return [*self.retired, *self.running]

    async def watch(self, every_s: float = 0.2) -> None:
        """Note when each worker exits (`Worker.exited_at`), until cancelled."""
        while True:
            for worker in self.running:
                _ = worker.alive
            await asyncio.sleep(every_s)

    def stop_all(self) -> None:
        """SIGKILL whatever still runs (the end of a case, or its failure)."""
        for worker in self.every:
            with contextlib.suppress(Exception):
                worker.kill()

    def logs(self) -> Iterator[tuple[Worker, str]]:
        for worker in self.every:
            yield worker, worker.log_text()

    def count_in_logs(self, text: str) -> int:
        return sum(log.count(text) for _, log in self.logs())


# -- the runner's outcome lines ---------------------------------------------------------------------

_OUTCOME = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ graphworks\.runner job=(\S+) type=(\S+) attempt=(\d+)"
    r" outcome=(\w+)(?: class=(\S+))?",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Outcome:
    """One `outcome=` line of the runner: when (epoch s, from the log's local timestamp), which worker."""

    at: float
    job: str
    type: str
    attempt: int
    outcome: str
    worker: str
    error_class: str = ""


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def outcomes(pool: WorkerPool) -> list[Outcome]:
    """Every outcome line of every worker of the pool, oldest first."""
    found = [
        Outcome(_epoch(m[1]), m[2], m[3], int(m[4]), m[5], worker.name, m[6] or "")
        for worker, text in pool.logs()
        for m in _OUTCOME.finditer(text)
    ]
    return sorted(found, key=lambda o: o.at)


_LEASE_LOST = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ graphworks\.worker job=([^.\s]+)\S* lease lost", re.MULTILINE
)


def lease_warnings(pool: WorkerPool) -> list[Outcome]:
    """The workers' "lease lost" warnings, as outcomes named `lease_lost` (attempt 0: not logged)."""
    return [
        Outcome(_epoch(m[1]), m[2], "", 0, "lease_lost", worker.name)
        for worker, text in pool.logs()
        for m in _LEASE_LOST.finditer(text)
    ]


_STAMPED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (.*)$", re.MULTILINE)


def line_times(pool: WorkerPool, text: str) -> list[tuple[float, str]]:
    """(time, worker name) of every log line of the pool's workers that contains `text`."""
    return [(_epoch(m[1]), worker.name) for worker, log in pool.logs() for m in _STAMPED.finditer(log) if text in m[2]]


def completion_times(found: Iterable[Outcome]) -> dict[str, list[float]]:
    """Per job id, the times of its `outcome=completed` lines (a re-run job may have several)."""
    times: dict[str, list[float]] = {}
    for o in found:
        if o.outcome == "completed":
            times.setdefault(o.job, []).append(o.at)
    return times


# -- enqueueing through the CLI ---------------------------------------------------------------------


def mail_payload(subject: str, mailbox: str = MAILBOX) -> dict[str, Any]:
    """A mail job's payload; graphsim's request log tells the jobs apart by their subject."""
    return {"mailbox": mailbox, "to": ["a@contoso.com"], "subject": subject, "body": "b"}


def mail_line(subject: str, mailbox: str = MAILBOX) -> str:
    """A line of a `graphworks enqueue --file` JSONL."""
    return json.dumps({"type": "mail", "payload": mail_payload(subject, mailbox)})


def enqueue_cli(env: dict[str, str], lines: list[str], timeout_s: float = 300.0) -> list[str]:
    """`graphworks enqueue --file -`: all or nothing; the job ids, in line order."""
    done = subprocess.run(
        [sys.executable, "-m", "graphworks", "enqueue", "--file", "-"],
        input="".join(line + "\n" for line in lines),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"graphworks enqueue failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    ids = done.stdout.split()
    if len(ids) != len(lines):
        raise RuntimeError(f"graphworks enqueue printed {len(ids)} ids for {len(lines)} jobs")
    return ids


# -- Redis figures ----------------------------------------------------------------------------------


class Monitor:
    """Reads the figures from Redis directly (not through a proxy), with a short timeout, so a read
    during an outage fails fast instead of hanging the case."""

    def __init__(self, redis_url: str) -> None:
        self.redis = aioredis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self.stats = Stats(self.redis)

    async def close(self) -> None:
        await self.redis.aclose()

    async def snapshot(self) -> StatsSnapshot | None:
        """The stats, or None while Redis does not answer."""
        try:
            return await self.stats.snapshot()
        except (redis.RedisError, OSError):
            return None

    async def in_progress(self) -> set[str]:
        """Job ids with an arq in-progress key now (running, or held by a dead worker's lease)."""
        found: set[str] = set()
        async for key in self.redis.scan_iter(match="arq:in-progress:*", count=1000):
            found.add(key.decode().removeprefix("arq:in-progress:").split(".")[0])
        return found

    async def dead_letter_job_ids(self) -> set[str]:
        """Job ids of the entries in the dead-letter store."""
        raw = await self.redis.hvals(keys.DLQ_ENTRIES)
        return {json.loads(v)["job_id"] for v in raw}

    async def final_markers(self) -> int:
        """Jobs counted final (completed or dead-lettered) once, by their marker keys."""
        return sum([1 async for _ in self.redis.scan_iter(match=f"{keys.PREFIX}final:*", count=1000)])

    async def drained(self, expected: int) -> bool:
        """Every expected job reached an outcome and nothing waits in the queue or for a retry."""
        snap = await self.snapshot()
        if snap is None:
            return False
        return snap.completed + snap.dead_lettered >= expected and snap.queued == 0 and snap.scheduled == 0

    async def idle(self) -> bool:
        """Nothing queued, scheduled or in progress: no job is going to finish any more."""
        snap = await self.snapshot()
        if snap is None or snap.queued or snap.scheduled:
            return False
        return not await self.in_progress()

    async def wait_drained(self, expected: int, stall_s: float) -> bool:
        """Until every expected job reached an outcome (True), or nothing moved for `stall_s` while
        the queue was idle (False: some job will never finish). The case's time limit bounds it."""
        idle_since: float | None = None
        while not await self.drained(expected):
            if await self.idle():
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > stall_s:
                    return False
            else:
                idle_since = None
            await asyncio.sleep(0.5)
        return True
