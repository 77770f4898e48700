"""A Sentinel failover with work flowing: what it costs and what it loses.

A master, a replica and three sentinels (graphworks/embedded_redis.py `start_sentinel_group`,
down-after 1 s), real `graphworks worker` processes sending mail through graphsim, a real
`graphworks serve --role webhooks` taking deliveries, every component given REDIS_SENTINELS and
nothing else about Redis. While a producer enqueues mail with the Python client and another posts
deliveries to the receiver, the master is SIGKILLed; once the sentinels name the replica, the old
master is started again as its replica (as a supervisor would); nothing of graphworks is restarted.

"Lost" is what was acknowledged and never happened: an enqueue that returned a job id whose mail
graphsim never accepted, a delivery answered 202 whose message no worker ever fetched.
Used by bench/chaos/run.py's `failover` case and tests/chaos/test_failover.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from graphsim.faults import Fault
from graphworks.embedded_redis import SentinelGroup, free_port, start_sentinel_group
from graphworks_core.connections import redis_client
from graphworks_core.errors import QueueUnavailable
from graphworks_core.settings import Settings, load_settings
from worker.client import GraphworksClient, JobRequest
from worker.stats import Stats
from worker.subscriptions.client_state import client_state_digest, new_client_state
from worker.subscriptions.registry import SubscriptionRecord, SubscriptionRegistry

from .harness import ROOT, Sim, WorkerPool, mail_payload, worker_env

SUBSCRIPTION = "failover-sub"
TENANT = "5f1d9a3c-0000-4000-8000-00000000fa11"
START_LIMIT_S = 60.0


@dataclass(frozen=True)
class Plan:
    """How much work flows, and when the master dies."""

    wait_replicas: int
    workers: int = 2
    jobs_per_s: float = 50.0
    deliveries_per_s: float = 20.0
    before_kill_s: float = 4.0  # of acknowledged work, once the workers send
    after_failover_s: float = 6.0  # of work after the sentinels named the new master
    graph_latency_s: float = 0.05
    drain_limit_s: float = 120.0
    rejoin_as_replica: bool = True  # False: the old master restarts as it was (a master)


@dataclass
class Figures:
    """What happened, in epoch seconds and counts."""

    plan: Plan
    acked: list[tuple[str, str, float, float]] = field(default_factory=list)  # job id, subject, asked, answered
    unavailable: int = 0  # jobs whose enqueue raised QueueUnavailable
    accepted: list[tuple[str, float, float]] = field(default_factory=list)  # message id, posted, answered 202
    refused: int = 0  # deliveries answered 503
    errors: Counter[str] = field(default_factory=Counter)  # anything else, by kind
    killed_at: float = 0.0
    failover_at: float = 0.0
    rejoined_at: float = 0.0
    completing_at: float = 0.0  # the first job completion the new master recorded (0: none seen)
    sent: Counter[str] = field(default_factory=Counter)  # subject -> accepted sendMail requests
    fetched: set[str] = field(default_factory=set)  # message ids some worker fetched
    dead: list[str] = field(default_factory=list)  # graphworks processes that exited on their own
    tracebacks: int = 0  # in the workers' and the receiver's logs
    drained: bool = False

    @property
    def lost_jobs(self) -> list[str]:
        return [job for job, subject, _, _ in self.acked if not self.sent[subject]]

    @property
    def lost_deliveries(self) -> list[str]:
        return [m for m, _, _ in self.accepted if m not in self.fetched]

    @property
    def sent_twice(self) -> int:
        return sum(1 for _, subject, _, _ in self.acked if self.sent[subject] > 1)

    def _resumed(self, asked_answered: list[tuple[float, float]]) -> float:
        """Kill -> the first answer to a request made after the kill (inf: none)."""
        after = [answered for asked, answered in asked_answered if asked > self.killed_at]
        return min(after) - self.killed_at if after else float("inf")

    @property
    def ack_resumed_s(self) -> float:
        """Kill -> the first acknowledged enqueue asked for after it."""
        return self._resumed([(asked, answered) for _, _, asked, answered in self.acked])

    @property
    def accept_resumed_s(self) -> float:
        """Kill -> the first 202 to a delivery posted after it."""
        return self._resumed([(asked, answered) for _, asked, answered in self.accepted])

    @property
    def completing_resumed_s(self) -> float:
        """Kill -> the first job completion the workers recorded on the new master."""
        return self.completing_at - self.killed_at if self.completing_at else float("inf")


@dataclass
class _Rig:
    group: SentinelGroup
    sim: Sim
    settings: Settings
    env: dict[str, str]
    tmp: Path
    figures: Figures
    pool: WorkerPool | None = None
    receiver: subprocess.Popen[bytes] | None = None
    receiver_url: str = ""
    client_state: str = ""


def _settings(group: SentinelGroup, wait_replicas: int) -> Settings:
    return load_settings(
        redis_url=None,
        redis_sentinels=group.sentinels_setting,
        redis_sentinel_master=group.master_name,
        redis_wait_replicas=wait_replicas,
        redis_enqueue_timeout_s=3,
        graph_static_token="t",
    )


def _env(group: SentinelGroup, sim: Sim, tmp: Path, wait_replicas: int) -> dict[str, str]:
    config = tmp / "graphworks.toml"
    config.write_text("[limits.apis.outlook]\noff = true\n")
    env = worker_env(
        "",
        sim.base_url,
        REDIS_SENTINELS=group.sentinels_setting,
        REDIS_SENTINEL_MASTER=group.master_name,
        REDIS_WAIT_REPLICAS=str(wait_replicas),
        WORKER_LEASE_S="5",
        REDIS_SOCKET_TIMEOUT_S="2",
        WORKER_SHUTDOWN_GRACE_S="5",
        GRAPHWORKS_CONFIG=str(config),
        GRAPH_TENANT_ID=TENANT,
    )
    env.pop("REDIS_URL")
    return env


@contextlib.asynccontextmanager
async def _rigged(tmp: Path, plan: Plan) -> AsyncIterator[_Rig]:
    (tmp / "logs").mkdir(parents=True, exist_ok=True)
    group = await asyncio.to_thread(start_sentinel_group, tmp / "redis")
    sim = Sim()
    rig = _Rig(group, sim, _settings(group, plan.wait_replicas), _env(group, sim, tmp, plan.wait_replicas), tmp,
               Figures(plan))  # fmt: skip
    try:
        yield rig
    finally:
        if rig.pool is not None:
            rig.pool.stop_all()
        if rig.receiver is not None and rig.receiver.poll() is None:
            rig.receiver.kill()
            rig.receiver.wait(10)
        sim.stop()
        await asyncio.to_thread(group.stop)


async def _register(rig: _Rig) -> None:
    """The subscription the deliveries name, written (and replicated) before anything starts."""
    rig.client_state = new_client_state()
    record = SubscriptionRecord(
        id=SUBSCRIPTION,
        resource="users/u-1/messages",
        change_type="created",
        notification_url="http://127.0.0.1:1/webhooks/graph",
        expiration=datetime.now(UTC) + timedelta(days=1),
        client_state_sha256=client_state_digest(rig.client_state),
        tenant_id=TENANT,
    )
    redis = redis_client(rig.settings)
    try:
        await SubscriptionRegistry(redis).put(record)
        await redis.execute_command("WAIT", 1, 5000)  # type: ignore[no-untyped-call]
    finally:
        await redis.aclose()


async def _start_processes(rig: _Rig) -> None:
    port = free_port()
    rig.receiver_url = f"http://127.0.0.1:{port}"
    rig.receiver = _spawn_receiver(port, rig.env, rig.tmp / "logs" / "receiver.log")
    rig.pool = WorkerPool(rig.env, rig.tmp / "logs")
    rig.pool.start(rig.figures.plan.workers)
    deadline = time.monotonic() + START_LIMIT_S
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(f"{rig.receiver_url}/api/queue/health")).status_code == 200:
                    return
            if rig.receiver.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("graphworks serve --role webhooks did not start: see logs/receiver.log")
            await asyncio.sleep(0.1)


def _spawn_receiver(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`graphworks serve --role webhooks` logging to `log` (a pipe nobody reads could fill up)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "graphworks", "serve", "--role", "webhooks", "--host", "127.0.0.1",
             "--port", str(port)],
            env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
        )  # fmt: skip


async def _produce_jobs(rig: _Rig, stop: asyncio.Event) -> None:
    f = rig.figures
    batch = 5
    interval = batch / f.plan.jobs_per_s
    n = 0
    async with GraphworksClient.from_settings(rig.settings) as gw:
        while not stop.is_set():
            subjects = [f"fo{f.plan.wait_replicas}-{n + i}" for i in range(batch)]
            n += batch
            started, asked = time.monotonic(), time.time()
            try:
                ids = await gw.enqueue_many([JobRequest(type="mail", payload=mail_payload(s)) for s in subjects])
            except QueueUnavailable:
                f.unavailable += batch
            except Exception as exc:  # a finding: counted and reported, the producer goes on
                f.errors[f"enqueue {type(exc).__name__}"] += batch
            else:
                now = time.time()
                f.acked.extend((job, s, asked, now) for job, s in zip(ids, subjects, strict=True))
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


def _delivery(rig: _Rig, message_id: str) -> dict[str, Any]:
    return {"value": [{
        "subscriptionId": SUBSCRIPTION, "clientState": rig.client_state, "changeType": "created",
        "resource": f"Users/u-1/Messages/{message_id}", "tenantId": TENANT,
        "resourceData": {"id": message_id, "@odata.type": "#Microsoft.Graph.Message"},
    }]}  # fmt: skip


async def _post_deliveries(rig: _Rig, stop: asyncio.Event) -> None:
    f = rig.figures
    interval = 1 / f.plan.deliveries_per_s
    n = 0
    async with httpx.AsyncClient(base_url=rig.receiver_url, timeout=10) as http:
        while not stop.is_set():
            message_id = f"fo{f.plan.wait_replicas}m{n}"
            n += 1
            started, asked = time.monotonic(), time.time()
            try:
                answer = await http.post("/webhooks/graph", json=_delivery(rig, message_id))
            except httpx.TransportError as exc:
                f.errors[f"delivery {type(exc).__name__}"] += 1
            else:
                if answer.status_code == 202:
                    f.accepted.append((message_id, asked, time.time()))
                elif answer.status_code == 503:
                    f.refused += 1
                else:
                    f.errors[f"delivery answered {answer.status_code}"] += 1
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


def _read_sim(rig: _Rig) -> None:
    f = rig.figures
    sent: Counter[str] = Counter()
    fetched: set[str] = set()
    for r in rig.sim.server.state.requests():
        if r.method == "POST" and r.path.endswith("/sendMail") and r.status == 202:
            sent[r.body["message"]["subject"]] += 1
        elif r.method == "GET" and "/messages/" in r.path.lower():
            fetched.add(r.path.rsplit("/", 1)[-1])
    f.sent, f.fetched = sent, fetched


async def _until(what: str, limit_s: float, check: Any) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {limit_s:.0f} s")
        await asyncio.sleep(0.1)


async def _kill_and_fail_over(rig: _Rig) -> None:
    f, group = rig.figures, rig.group
    old = group.master
    old_port = group.master_port()
    f.killed_at = time.time()
    old.process.kill()
    old.process.wait(10)

    named: list[int] = []

    async def failed_over() -> bool:
        port = await asyncio.to_thread(group.master_port)
        if port is not None and port != old_port:
            named.append(port)
        return bool(named)

    await _until("the sentinels naming a new master", 60, failed_over)
    f.failover_at = time.time()
    watching = asyncio.create_task(_watch_completions(rig))
    try:
        # As a replica of the new master (a supervisor asking the sentinels first), or as it was:
        # a master, until the sentinels demote it, that a client asking a sentinel not yet told of
        # the failover may write to.
        replica_of = named[0] if f.plan.rejoin_as_replica else None
        await asyncio.to_thread(group.restart, old, replica_of=replica_of)
        await asyncio.to_thread(group.wait_ready, 60.0)
        f.rejoined_at = time.time()
        await asyncio.wait_for(asyncio.shield(watching), 60)
    finally:
        watching.cancel()


async def _watch_completions(rig: _Rig) -> None:
    """Note when the completed counter on the new master first moves past what it held when the
    sentinels named it: the workers are finishing jobs there."""
    redis = redis_client(rig.settings, retries=-1)
    try:
        stats = Stats(redis)
        baseline = (await stats.snapshot()).completed
        while True:
            if (await stats.snapshot()).completed > baseline:
                rig.figures.completing_at = time.time()
                return
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()


async def _drain(rig: _Rig) -> None:
    """Until every acknowledged job was sent and every accepted delivery fetched, or nothing has
    moved for a while (what is left then is lost), within the plan's limit."""
    f = rig.figures
    deadline = time.monotonic() + f.plan.drain_limit_s
    last, still_since = (-1, -1), time.monotonic()
    while time.monotonic() < deadline:
        _read_sim(rig)
        if not f.lost_jobs and not f.lost_deliveries:
            f.drained = True
            return
        progress = (sum(f.sent.values()), len(f.fetched))
        if progress != last:
            last, still_since = progress, time.monotonic()
        elif time.monotonic() - still_since > 20:  # > a lease and a retry: nothing more is coming
            return
        await asyncio.sleep(0.5)


async def run_failover(tmp: Path, plan: Plan) -> Figures:
    """Run the scenario in `tmp` (logs in tmp/logs) and return its figures."""
    async with _rigged(tmp, plan) as rig:
        f = rig.figures
        rig.sim.server.state.add_fault(_slow_sends(plan.graph_latency_s))
        await _register(rig)
        await _start_processes(rig)
        stop = asyncio.Event()
        producers = [asyncio.create_task(_produce_jobs(rig, stop)), asyncio.create_task(_post_deliveries(rig, stop))]
        try:

            async def sending() -> bool:
                _read_sim(rig)
                return bool(f.sent) and bool(f.fetched)

            await _until("the workers sending", START_LIMIT_S, sending)
            await asyncio.sleep(plan.before_kill_s)  # work flowing before the fault: the scenario, not a wait
            await _kill_and_fail_over(rig)
            await asyncio.sleep(plan.after_failover_s)
        finally:
            stop.set()
            await asyncio.gather(*producers, return_exceptions=True)
        await _drain(rig)
        assert rig.pool is not None
        f.dead = [f"{w.name}:exit {w.process.returncode}" for w in rig.pool.running if not w.alive]
        if rig.receiver is not None and rig.receiver.poll() is not None:
            f.dead.append(f"receiver:exit {rig.receiver.returncode}")
        f.tracebacks = sum(p.read_text(errors="replace").count("Traceback") for p in (tmp / "logs").glob("*.log"))
        return f


def _slow_sends(seconds: float) -> Fault:
    return Fault(method="POST", path="/users/*/sendMail", kind="slow", delay_s=seconds, times=None)
