"""The fault suite: real worker processes, a real redis-server (AOF, appendfsync always) and
graphsim over HTTP, all on loopback, with faults injected while jobs flow; each case prints its
figures, whether each goal is met, and a summary table at the end.

    .venv/bin/python bench/chaos/run.py [--case kill|term|redis|network|order|failover|fuzz|all] [--jobs 10000]
                                        [--seed 1] [--workers 4] [--graph-latency 0.1] [--keep-logs]
    ./dev chaos [same options]

Exit code 0 when every goal of the cases run is met, 1 otherwise. Every case has time limits (it
fails, it does not hang) and cleans up its processes and temporary directory however it ends,
Ctrl-C and SIGTERM included (`--keep-logs` keeps the directory, with each worker's log, and prints
where it is). `--seed` picks which worker dies when and where the 503s fall. With the defaults on
a 2-core machine: kill and term 50-90 s each, redis ~45 s, network ~2 min, order ~65 s.

Cases (sizes for `--jobs 10000`; `--jobs N` runs kill and term with N jobs and scales the others
by N / 10000, with a floor):

- kill: 10,000 mail jobs, 4 workers (WORKER_LEASE_S=5, REDIS_SOCKET_TIMEOUT_S=2), a random worker
  SIGKILLed every 3-8 s and a new one started at once. Goals: no job lost, every job completed,
  no outcome counted twice, the jobs graphsim received twice no more than the jobs in flight at
  the kills, and the longest extra delay under WORKER_LEASE_S + 5 s. Extra delay: for a job in
  flight at a kill (an arq in-progress key just before or just after the SIGKILL), the time from
  the first kill that cut its last run to its last `outcome=completed` line.
- term: the same jobs with a rolling restart every 10 s (the first once the workers are up):
  SIGTERM the oldest worker, wait up to WORKER_SHUTDOWN_GRACE_S + 20 s for it to exit 0, start a
  new one. Goals: nothing lost, no send doubled, no attempt spent on a shutdown: no retry logged
  by a worker between its SIGTERM and its exit (nor of class unknown: a cancelled job), and no
  completion at attempt > 1 of such a job. Retries elsewhere are printed by class; hand-backs
  are counted from the logs.
- redis: redis-server SIGKILLed mid-run and started again on its AOF 5 s later, twice, while 4
  workers run and a producer enqueues batches of 5 with the Python client (3,000 jobs over 40 s).
  Goals: every acknowledged enqueue completes, the 20 dead letters seeded before (graphsim
  answers 400 to one mailbox's sends) are all in the store after both restarts, and every worker
  is still alive and has completed a job since the last restart; the time from Redis back to the
  first completion is reported.
- network: a FaultProxy between the workers and Redis, another between the workers and graphsim
  (GRAPH_CALL_TIMEOUT_S=3); on each in turn 200 ms latency each way for 10 s, a 10 s blackhole,
  then three connection resets 3 s apart, while a producer enqueues 3,000 jobs over 120 s
  directly into Redis. Goals: after each fault ends every worker completes a job again within
  its timeout (the Redis socket timeout, or the Graph call timeout) + 3 s, nothing lost,
  outcomes counted once.
- order: 50 chats x 20 Teams messages enqueued by 4 concurrent `graphworks enqueue --file -`
  processes (producer k owns chats k, k+4, ...; each writes its chats' messages in order), graphsim
  failing about 10% of the posts with 503, 4 workers, Graph's Teams limits on. Goal: every chat
  received its messages in enqueue order, none missing.
- failover: Redis Sentinel (a master, a replica, three sentinels; down-after 1 s) under 4 workers,
  a `graphworks serve --role webhooks` and two producers (mail enqueued with the Python client at
  100 jobs/s, deliveries posted at 40/s); the master SIGKILLed and, once the sentinels name the
  replica, started again: as its replica (a supervisor asking the sentinels), then as it was (a
  master until the sentinels demote it, ~10 s); each with REDIS_WAIT_REPLICAS=0 and 1
  (chaos/failover.py). Reported: seconds from the kill to the new master, to the first
  acknowledged enqueue and 202 (of requests made after the kill) and to the first job completion
  on the new master; acknowledged enqueues and 202'd deliveries lost. Goals: with WAIT=1 nothing
  acknowledged lost; in every run no process needing a restart and no failure but "unavailable".
  Without WAIT a loss is possible (asynchronous replication; writes to the restarted old master)
  and reported, not judged. About 4 min.
- fuzz: tests/fuzz/ at far more examples than `./dev test` (chaos/fuzz.py): schemathesis against a
  running `serve` (25 examples per operation and token) and hypothesis against the webhook
  receiver (6,000 deliveries, 1,200 more with Redis down). Goals: every test passes (no 5xx, every
  response as its schema says, nothing stored that had to be dropped). Reported: the cases tried.
  About 5 minutes.

Every case also has the goal that no worker process exits on its own, and prints the "lease lost"
warnings and tracebacks in the workers' logs.

Settings shared by the cases: WORKER_LEASE_S=5, REDIS_SOCKET_TIMEOUT_S=2,
WORKER_SHUTDOWN_GRACE_S=5, graphsim answering each sendMail after `--graph-latency` s (so that
jobs are in flight when a fault strikes, as with Graph), and a GRAPHWORKS_CONFIG that switches
off the Outlook per-mailbox limit (10,000 requests per 10 min would pace 10,000 mails to one
mailbox at 16/s); every other limit, and the shared limiter's Redis calls, stay on. The figures
come from Redis (`Stats.snapshot()`, in-progress keys, the dead-letter store, read directly, not
through a proxy), graphsim's request log and the runner's outcome lines in the workers' logs;
"outcomes counted twice" is the stats' completed count minus the distinct jobs with an
`outcome=completed` line; "lost" is an enqueued job that graphsim never accepted and that never
completed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: bench/ is where `chaos` lives
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos.failover import Plan, run_failover
from chaos.fuzz import LIMIT_S as FUZZ_LIMIT_S
from chaos.fuzz import case_fuzz
from chaos.harness import (
    MAILBOX,
    AofRedis,
    Monitor,
    Outcome,
    Sim,
    Worker,
    WorkerPool,
    completion_times,
    enqueue_cli,
    lease_warnings,
    line_times,
    mail_line,
    mail_payload,
    outcomes,
    worker_env,
)
from chaos.proxy import FaultProxy
from chaos.report import CaseResult, Clock, Figure, at_most, below, equals, info, progress, summary
from graphsim.faults import Fault
from graphworks_core.errors import QueueUnavailable
from graphworks_core.settings import load_settings
from worker.client import GraphworksClient, JobRequest

LEASE_S = 5.0
SOCKET_TIMEOUT_S = 2.0
GRACE_S = 5.0
GRAPH_CALL_TIMEOUT_S = 3.0  # the network case's; the others keep the default
RESUME_SLACK_S = 3.0
DEFAULT_JOBS = 10_000
CONFIG_TOML = "[limits.apis.outlook]\noff = true\n"


@dataclass(frozen=True)
class Options:
    jobs: int
    seed: int
    workers: int
    keep_logs: bool
    graph_latency_s: float = 0.1

    @property
    def scale(self) -> float:
        return self.jobs / DEFAULT_JOBS

    def scaled(self, default: int, floor: int) -> int:
        return max(floor, round(default * self.scale))


# -- the rig: Redis, graphsim, workers, cleanup -----------------------------------------------------


@dataclass
class Rig:
    """What a case runs on; everything registered on `stack` is undone when the case ends."""

    name: str
    tmp: Path
    redis: AofRedis
    sim: Sim
    monitor: Monitor
    stack: contextlib.AsyncExitStack
    clock: Clock = field(default_factory=Clock)
    pools: list[WorkerPool] = field(default_factory=list)

    def env(self, redis_url: str | None = None, graph_url: str | None = None, **extra: str) -> dict[str, str]:
        config = self.tmp / "graphworks.toml"
        config.write_text(CONFIG_TOML)
        settings = {
            "WORKER_LEASE_S": str(LEASE_S),
            "REDIS_SOCKET_TIMEOUT_S": str(SOCKET_TIMEOUT_S),
            "WORKER_SHUTDOWN_GRACE_S": str(GRACE_S),
            "GRAPHWORKS_CONFIG": str(config),
            **extra,
        }
        return worker_env(redis_url or self.redis.url, graph_url or self.sim.base_url, **settings)

    def workers(self, n: int, env: dict[str, str]) -> WorkerPool:
        pool = WorkerPool(env, self.tmp / "logs")
        self.pools.append(pool)
        pool.start(n)
        watcher = asyncio.create_task(pool.watch())
        self.stack.push_async_callback(stopped, watcher)
        return pool

    def log(self, message: str) -> None:
        progress(self.clock, message)

    def slow_sends(self, seconds: float) -> None:
        """Every sendMail answered `seconds` late (Graph is not instant: more jobs are in flight at a
        fault). Faults are matched in the order added: add this one after any that should win."""
        if seconds > 0:
            fault = Fault(method="POST", path="/users/*/sendMail", kind="slow", delay_s=seconds, times=None)
            self.sim.server.state.add_fault(fault)

    def stop_workers(self) -> None:
        for pool in self.pools:
            pool.stop_all()


@contextlib.asynccontextmanager
async def rig(name: str, keep_logs: bool) -> AsyncIterator[Rig]:
    tmp = Path(tempfile.mkdtemp(prefix=f"graphworks-chaos-{name}-"))
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(_remove_dir, tmp, keep_logs)
        (tmp / "redis").mkdir()
        (tmp / "logs").mkdir()
        server = AofRedis(tmp / "redis")
        stack.callback(server.stop)  # first: a server that fails to answer is still stopped
        server.start()
        sim = Sim()
        stack.callback(sim.stop)
        monitor = Monitor(server.url)
        stack.push_async_callback(monitor.close)
        the_rig = Rig(name, tmp, server, sim, monitor, stack)
        stack.callback(the_rig.stop_workers)
        yield the_rig


def _remove_dir(path: Path, keep: bool) -> None:
    if keep:
        print(f"  logs kept in {path / 'logs'}")
    else:
        shutil.rmtree(path, ignore_errors=True)


async def bounded(result: CaseResult, seconds: float, what: str, work: Awaitable[Any]) -> bool:
    """Await `work` for at most `seconds`; past that the case fails (with its figures still measured)."""
    try:
        async with asyncio.timeout(seconds):
            await work
        return True
    except TimeoutError:
        result.error = f"time limit: {what} not done within {seconds:.0f} s"
        print(f"  !! {result.error}", flush=True)
        return False


async def stopped(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def enqueue_mail(env: dict[str, str], subjects: list[str], mailbox: str = MAILBOX) -> list[str]:
    lines = [mail_line(s, mailbox) for s in subjects]
    return await asyncio.to_thread(enqueue_cli, env, lines)


# -- figures shared by the mail cases ---------------------------------------------------------------


@dataclass
class Delivery:
    """What became of a set of mail jobs, from the logs, graphsim and the stats."""

    jobs: list[tuple[str, str]]  # (job id, subject)
    found: list[Outcome]
    done: dict[str, list[float]]  # job id -> times of its completed lines
    sends: Counter[str]  # subject -> accepted sendMail requests
    completed_stat: int
    dead_lettered_stat: int

    @property
    def lost(self) -> int:
        return sum(1 for job, subject in self.jobs if job not in self.done and not self.sends[subject])

    @property
    def not_completed(self) -> int:
        return sum(1 for job, _ in self.jobs if job not in self.done)

    @property
    def counted_twice(self) -> int:
        return self.completed_stat - len(self.done)

    @property
    def sent_twice(self) -> int:
        return sum(1 for _, subject in self.jobs if self.sends[subject] > 1)

    @property
    def extra_sends(self) -> int:
        return sum(max(0, self.sends[subject] - 1) for _, subject in self.jobs)


async def delivery(r: Rig, jobs: list[tuple[str, str]]) -> Delivery:
    found = [o for pool in r.pools for o in outcomes(pool)]
    snap = await r.monitor.snapshot()
    return Delivery(
        jobs=jobs,
        found=found,
        done=completion_times(found),
        sends=r.sim.mail_sends(),
        completed_stat=snap.completed if snap else -1,
        dead_lettered_stat=snap.dead_lettered if snap else -1,
    )


def delivery_figures(d: Delivery, what: str = "jobs enqueued") -> list[Figure]:
    return [
        info(what, len(d.jobs)),
        equals("lost (never sent, never completed)", d.lost, 0),
        equals("not completed", d.not_completed, 0),
        equals("outcomes counted twice (stats - distinct completed)", d.counted_twice, 0),
    ]


def died_on_their_own(r: Rig) -> list[str]:
    """Workers the case did not stop that are no longer running: name and exit code."""
    return [f"{w.name}:exit {w.process.returncode}" for pool in r.pools for w in pool.running if not w.alive]


def log_figures(r: Rig) -> list[Figure]:
    texts = [text for pool in r.pools for _, text in pool.logs()]
    warnings = [w for pool in r.pools for w in lease_warnings(pool)]
    done = {(o.worker, o.job): o.at for o in _all(r) if o.outcome == "completed"}
    # A warning for a job its own worker had just completed (its finish deleted the in-progress key).
    after_own = sum(1 for w in warnings if 0 <= w.at - done.get((w.worker, w.job), -1e9) < 1.0)
    return [
        equals("worker processes that exited on their own", " ".join(died_on_their_own(r)) or 0, 0),
        info("'lease lost' warnings in worker logs", len(warnings)),
        info("  of them < 1 s after that worker completed the job", after_own),
        info("tracebacks in worker logs", sum(t.count("Traceback") for t in texts)),
    ]


# -- kill: SIGKILL a random worker every 3-8 s ------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    at: float
    worker: str
    in_flight: frozenset[str]


async def kill_randomly(r: Rig, pool: WorkerPool, rng: random.Random, kills: list[Kill]) -> None:
    while True:
        await asyncio.sleep(rng.uniform(3, 8))
        victim = rng.choice(pool.running)
        before = await r.monitor.in_progress()
        at = time.time()
        victim.kill()
        after = await r.monitor.in_progress()
        pool.retire(victim)
        [new] = pool.start(1)
        kills.append(Kill(at, victim.name, frozenset(before | after)))
        r.log(f"SIGKILL {victim.name} ({len(before | after)} jobs in flight), started {new.name}")


def extra_delays(kills: list[Kill], done: dict[str, list[float]], jobs: set[str]) -> dict[str, float]:
    """Per job in flight at a kill: from the first kill that cut its last run (the earliest kill it
    was in flight at after its previous completion line, if any) to its last completion; inf for a
    job that never completed. A dead worker's in-progress keys outlive it by up to a lease, so a
    job can be "in flight" at several kills in a row: the first one is the one that cut it."""
    delays: dict[str, float] = {}
    for job in {j for k in kills for j in k.in_flight} & jobs:
        if job not in done:
            delays[job] = float("inf")
            continue
        finished = max(done[job])
        previous = max((t for t in done[job] if t < finished), default=float("-inf"))
        cut_at = [k.at for k in kills if job in k.in_flight and previous <= k.at <= finished]
        if cut_at:
            delays[job] = max(0.0, finished - min(cut_at))
    return delays


async def case_kill(r: Rig, opts: Options, result: CaseResult) -> None:
    n = opts.jobs
    env = r.env()
    r.slow_sends(opts.graph_latency_s)
    subjects = [f"kill-{opts.seed}-{i}" for i in range(n)]
    ids = await enqueue_mail(env, subjects)
    r.log(f"enqueued {n} mail jobs; starting {opts.workers} workers")
    pool = r.workers(opts.workers, env)
    kills: list[Kill] = []
    killer = asyncio.create_task(kill_randomly(r, pool, random.Random(opts.seed), kills))
    try:
        drain = r.monitor.wait_drained(n, stall_s=3 * LEASE_S)
        await bounded(result, drain_limit(n), "every job completed", drain)
    finally:
        await stopped(killer)
    r.log("drained" if result.error is None else "stopped")
    d = await delivery(r, list(zip(ids, subjects, strict=True)))
    in_flight = len(frozenset().union(*(k.in_flight for k in kills)) & set(ids))
    delays = extra_delays(kills, d.done, set(ids))
    rerun = [v for v in delays.values() if v > 1.0]
    result.add(
        *delivery_figures(d),
        Figure("SIGKILLs", str(len(kills)), ">= 1", len(kills) >= 1),
        info("jobs in flight at a kill (distinct)", in_flight),
        at_most("jobs graphsim received twice or more", d.sent_twice, in_flight),
        info("extra sends (beyond one per job)", d.extra_sends),
        info("jobs completed at an attempt > 1", sum(1 for o in d.found if o.outcome == "completed" and o.attempt > 1)),
        info("jobs in flight at a kill that waited > 1 s", len(rerun)),
        info("  their median extra delay (s)", statistics.median(rerun) if rerun else 0.0),
        below("longest extra delay (kill -> completion)", max(delays.values(), default=0.0), LEASE_S + 5, " s"),
        *log_figures(r),
    )


def drain_limit(jobs: int) -> float:
    """Time allowed for a mail case to drain: generous for a 2-core machine (about 250 jobs/s)."""
    return 120 + jobs * 0.04


# -- term: rolling SIGTERM restarts every 10 s ------------------------------------------------------


@dataclass(frozen=True)
class Restart:
    worker: str
    sigterm_at: float  # wall clock
    exit_code: int | None  # None: still running after the grace and a margin (then SIGKILLed)
    seconds: float


async def workers_up(pool: WorkerPool) -> None:
    """Until every running worker has logged its start (its poll loop is running)."""
    while True:
        if all("worker starting" in w.log_text() for w in pool.running):
            return
        await asyncio.sleep(0.2)


async def roll(r: Rig, pool: WorkerPool, restarts: list[Restart], every_s: float = 10.0) -> None:
    """The first restart once the workers are up and busy, then one every `every_s`."""
    await workers_up(pool)
    await asyncio.sleep(1.0)
    while True:
        victim = pool.running[0]
        started, sigterm_at = time.monotonic(), time.time()
        victim.terminate()
        code = await victim.wait(GRACE_S + 20)
        if code is None:
            victim.kill()
        pool.retire(victim)
        [new] = pool.start(1)
        restarts.append(Restart(victim.name, sigterm_at, code, time.monotonic() - started))
        r.log(f"SIGTERM {victim.name}: exit {code} after {restarts[-1].seconds:.1f} s, started {new.name}")
        await asyncio.sleep(every_s)


def split_retries(found: list[Outcome], restarts: list[Restart]) -> tuple[list[Outcome], list[Outcome]]:
    """The retry lines of a worker between its SIGTERM and its exit (or cancelled jobs anywhere),
    and all the others."""
    stopping = {x.worker: x.sigterm_at for x in restarts}
    retries = [o for o in found if o.outcome == "retry"]

    def on_shutdown(o: Outcome) -> bool:
        return o.at >= stopping.get(o.worker, float("inf")) or o.error_class == "unknown"

    return [o for o in retries if on_shutdown(o)], [o for o in retries if not on_shutdown(o)]


def retry_classes(retries: list[Outcome]) -> dict[str, int]:
    return dict(Counter(o.error_class for o in retries))


async def case_term(r: Rig, opts: Options, result: CaseResult) -> None:
    n = opts.jobs
    env = r.env()
    r.slow_sends(opts.graph_latency_s)
    subjects = [f"term-{opts.seed}-{i}" for i in range(n)]
    ids = await enqueue_mail(env, subjects)
    r.log(f"enqueued {n} mail jobs; starting {opts.workers} workers")
    pool = r.workers(opts.workers, env)
    restarts: list[Restart] = []
    roller = asyncio.create_task(roll(r, pool, restarts))
    try:
        drain = r.monitor.wait_drained(n, stall_s=3 * LEASE_S)
        await bounded(result, drain_limit(n), "every job completed", drain)
    finally:
        await stopped(roller)
    d = await delivery(r, list(zip(ids, subjects, strict=True)))
    shutdown_retries, other_retries = split_retries(d.found, restarts)
    spent = {o.job for o in shutdown_retries}
    later = sum(1 for o in d.found if o.attempt > 1 and o.outcome == "completed" and o.job in spent)
    result.add(
        *delivery_figures(d),
        Figure("SIGTERM restarts", str(len(restarts)), ">= 1", len(restarts) >= 1),
        equals(f"restarts not exiting 0 within {GRACE_S + 20:.0f} s", sum(1 for x in restarts if x.exit_code != 0), 0),
        info("longest SIGTERM -> exit (s)", max((x.seconds for x in restarts), default=0.0)),
        info("jobs handed back on shutdown (logs)", pool.count_in_logs("handed back to the queue on shutdown")),
        equals("jobs graphsim received twice or more", d.sent_twice, 0),
        equals("attempts spent on shutdowns", len(shutdown_retries) + later, 0),
        info("retries elsewhere (not in a stopping worker), by class", retry_classes(other_retries) or 0),
        *log_figures(r),
    )


# -- a producer enqueueing with the Python client while a case runs ---------------------------------


@dataclass
class Producer:
    """Enqueues `total` mail jobs in batches over `seconds` (catching up after an outage), directly
    into Redis; keeps the acknowledged (id, subject) pairs and counts what was not acknowledged."""

    redis_url: str
    prefix: str
    total: int
    seconds: float
    batch: int = 5  # jobs per enqueue_many call
    acked: list[tuple[str, str]] = field(default_factory=list)
    unavailable: int = 0  # jobs of batches that raised QueueUnavailable
    errors: Counter[str] = field(default_factory=Counter)  # any other exception, by type

    async def run(self) -> None:
        settings = load_settings(redis_url=self.redis_url, redis_enqueue_timeout_s=3, graph_static_token="t")
        async with GraphworksClient.from_settings(settings) as gw:
            interval = self.seconds * self.batch / self.total
            next_at = time.monotonic()
            for start in range(0, self.total, self.batch):
                subjects = [f"{self.prefix}-{i}" for i in range(start, min(self.total, start + self.batch))]
                await self._put(gw, subjects)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _put(self, gw: GraphworksClient, subjects: list[str]) -> None:
        try:
            ids = await gw.enqueue_many([JobRequest(type="mail", payload=mail_payload(s)) for s in subjects])
        except QueueUnavailable:
            self.unavailable += len(subjects)
        except Exception as exc:  # a product finding: reported, the producer goes on
            self.errors[type(exc).__name__] += len(subjects)
        else:
            self.acked.extend(zip(ids, subjects, strict=True))


def producer_figures(p: Producer, done: dict[str, list[float]], known: set[str]) -> list[Figure]:
    """What the producer was told; of the jobs it was not told about, how many exist anyway (they
    completed although their enqueue raised: a reply lost after the write). `known`: other jobs."""
    acked = {job for job, _ in p.acked}
    stored_anyway = sum(1 for job in done if job not in acked and job not in known)
    return [
        info("enqueues not acknowledged (QueueUnavailable)", p.unavailable),
        info("  of them stored anyway (they completed)", stored_anyway),
        equals("enqueues failing otherwise", dict(p.errors) or 0, 0),
    ]


# -- redis: redis-server SIGKILLed and restarted on its AOF, twice ----------------------------------

DLQ_SEEDS = 20
DLQ_MAILBOX = "dlq@contoso.com"


@dataclass(frozen=True)
class Outage:
    down_at: float
    back_at: float


async def seed_dead_letters(r: Rig, env: dict[str, str], opts: Options, result: CaseResult) -> list[str]:
    r.sim.server.state.add_fault(Fault(method="POST", path="/users/dlq*/sendMail", status=400, times=None))
    ids = await enqueue_mail(env, [f"redis-dlq-{i}" for i in range(DLQ_SEEDS)], mailbox=DLQ_MAILBOX)
    r.slow_sends(opts.graph_latency_s)

    async def stored() -> None:
        while True:
            if set(ids) <= await r.monitor.dead_letter_job_ids():
                return
            await asyncio.sleep(0.2)

    await bounded(result, 60, "the seeded dead letters stored", stored())
    return ids


async def kill_redis(r: Rig, down_s: float = 5.0) -> Outage:
    r.redis.kill()
    down_at = time.time()
    r.log(f"redis-server SIGKILLed; restarting it on its AOF in {down_s:.0f} s")
    await asyncio.sleep(down_s)
    await asyncio.to_thread(r.redis.start)
    back_at = time.time()
    r.log("redis-server answers again")
    return Outage(down_at, back_at)


def first_completion_after(found: list[Outcome], t: float, worker: str | None = None) -> float:
    """Seconds from `t` to the first completion after it (of `worker`, if given); inf if none."""
    times = [o.at for o in found if o.outcome == "completed" and o.at >= t and worker in (None, o.worker)]
    return min(times) - t if times else float("inf")


def stuck_workers(pool: WorkerPool, found: list[Outcome], since: float) -> list[str]:
    """Workers dead, or alive without a completion since `since`: each would need a restart by hand."""
    completing = {o.worker for o in found if o.outcome == "completed" and o.at >= since}
    return [w.name for w in pool.running if not w.alive or w.name not in completing]


def outage_lines(pool: WorkerPool) -> str:
    def one(w: Worker) -> str:
        text = w.log_text()
        return f"{text.count('redis unreachable at worker')}/{text.count('redis answers again at worker')}"

    return " ".join(one(w) for w in pool.running)


async def case_redis(r: Rig, opts: Options, result: CaseResult) -> None:
    env = r.env()
    pool = r.workers(opts.workers, env)
    seeded = await seed_dead_letters(r, env, opts, result)
    r.log(f"{len(seeded)} dead letters seeded; producing")
    producer = Producer(r.redis.url, f"redis-{opts.seed}", opts.scaled(3000, 100), seconds=40)
    producing = asyncio.create_task(producer.run())
    outages: list[Outage] = []
    try:
        for pause in (8.0, 10.0):
            await asyncio.sleep(pause)
            outages.append(await kill_redis(r))
        await bounded(result, 120, "the producer", asyncio.shield(producing))
    finally:
        await stopped(producing)
    r.log(f"producer done: {len(producer.acked)} acknowledged")
    await bounded(result, 180, "every job completed", r.monitor.wait_drained(len(producer.acked), 3 * LEASE_S))
    d = await delivery(r, producer.acked)
    present = await r.monitor.dead_letter_job_ids()
    back = ", ".join(f"{first_completion_after(d.found, o.back_at):.2f}" for o in outages)
    result.add(
        *delivery_figures(d, "acknowledged enqueues"),
        *producer_figures(producer, d.done, set(seeded)),
        equals("dead-letter entries lost (of those seeded)", len(set(seeded) - present), 0),
        equals("workers needing a restart by hand", stuck_workers(pool, d.found, outages[-1].back_at) or 0, 0),
        info("outage lines per worker (unreachable/answers again)", outage_lines(pool)),
        info("Redis back -> first completed job (s)", back),
        info("jobs graphsim received twice or more", d.sent_twice),
        *log_figures(r),
    )


# -- network: latency, blackholes and resets between the workers and Redis, then graphsim -----------


@dataclass(frozen=True)
class Window:
    """A fault, from `start` to `end` (equal for a reset); `timeout_s`: what a worker may wait on it."""

    name: str
    start: float
    end: float
    timeout_s: float


async def hold(name: str, seconds: float, timeout_s: float, on: Callable[[], None], off: Callable[[], None]) -> Window:
    start = time.time()
    on()
    try:
        await asyncio.sleep(seconds)
    finally:
        off()
    return Window(name, start, time.time(), timeout_s)


async def fault_sequence(r: Rig, label: str, proxy: FaultProxy, timeout_s: float, calm_s: float = 6.0) -> list[Window]:
    """On one proxy: 200 ms latency each way for 10 s, a 10 s blackhole, three resets 3 s apart."""

    def latency(on: bool) -> None:
        proxy.set_latency(0.2 if on else 0.0)

    windows: list[Window] = []
    await asyncio.sleep(calm_s)
    r.log(f"{label}: 200 ms latency (each way) for 10 s")
    windows.append(await hold(f"{label} latency", 10, timeout_s, lambda: latency(True), lambda: latency(False)))
    await asyncio.sleep(calm_s)
    r.log(f"{label}: blackhole for 10 s")
    windows.append(
        await hold(f"{label} blackhole", 10, timeout_s, lambda: proxy.blackhole(True), lambda: proxy.blackhole(False))
    )
    await asyncio.sleep(calm_s)
    for i in range(3):
        at = time.time()
        n = await asyncio.to_thread(proxy.reset_all)
        r.log(f"{label}: reset {n} connections")
        windows.append(Window(f"{label} reset #{i + 1}", at, at, timeout_s))
        await asyncio.sleep(3)
    await asyncio.sleep(calm_s)
    return windows


def resume_figures(windows: list[Window], pool: WorkerPool, found: list[Outcome]) -> list[Figure]:
    """Per fault, the slowest worker's next completion after the fault ended. A worker that exited
    before completing again is left out (the exit is a figure of its own)."""
    figures = []
    for w in windows:
        limit = w.timeout_s + RESUME_SLACK_S
        waits = {x.name: first_completion_after(found, w.end, x.name) for x in pool.every if x.alive_at(w.end)}
        dead = [x.name for x in pool.every if x.name in waits and not x.alive_at(w.end + min(waits[x.name], 1e9))]
        worst = max((v for k, v in waits.items() if k not in dead), default=float("inf"))
        note = f" ({len(dead)} exited, left out)" if dead else ""
        figures.append(at_most(f"{w.name}: slowest worker's next completion{note}", worst, limit, " s"))
        if w.end > w.start:
            during = Counter(o.worker for o in found if o.outcome == "completed" and w.start <= o.at < w.end)
            per_worker = " ".join(str(during[x.name]) for x in pool.every if x.alive_at(w.start))
            figures.append(info("  completions during it, per worker", per_worker))
    return figures


def noticed(windows: list[Window], pool: WorkerPool) -> str:
    """From the start of the Redis blackhole to each worker's first "redis unreachable" line, the
    longest: a command waits REDIS_SOCKET_TIMEOUT_S per try, and redis-py tries it more than once."""
    [blackhole] = [w for w in windows if w.name == "redis blackhole"]
    lines = line_times(pool, "redis unreachable at worker")
    firsts = [
        min((t for t, name in lines if name == w.name and t >= blackhole.start), default=None) for w in pool.running
    ]
    if any(t is None for t in firsts):
        return "never (some worker)"
    return f"{max(t for t in firsts if t is not None) - blackhole.start:.2f} s"


def proxy_to(upstream_port: int, r: Rig) -> FaultProxy:
    proxy = FaultProxy("127.0.0.1", upstream_port).start()
    r.stack.callback(proxy.stop)
    return proxy


async def case_network(r: Rig, opts: Options, result: CaseResult) -> None:
    to_redis, to_graph = proxy_to(r.redis.port, r), proxy_to(r.sim.port, r)
    env = r.env(
        redis_url=f"redis://127.0.0.1:{to_redis.port}/0",
        graph_url=f"http://127.0.0.1:{to_graph.port}/v1.0",
        GRAPH_CALL_TIMEOUT_S=str(GRAPH_CALL_TIMEOUT_S),
    )
    r.slow_sends(opts.graph_latency_s)
    pool = r.workers(opts.workers, env)
    # One job per call: a steady trickle, so that every worker gets jobs all the time.
    producer = Producer(r.redis.url, f"net-{opts.seed}", opts.scaled(3000, 1200), seconds=120, batch=1)
    producing = asyncio.create_task(producer.run())
    windows: list[Window] = []
    try:
        windows += await fault_sequence(r, "redis", to_redis, SOCKET_TIMEOUT_S)
        windows += await fault_sequence(r, "graph", to_graph, GRAPH_CALL_TIMEOUT_S)
        await bounded(result, 120, "the producer", asyncio.shield(producing))
    finally:
        await stopped(producing)
    r.log(f"producer done: {len(producer.acked)} acknowledged")
    await bounded(result, 180, "every job completed", r.monitor.wait_drained(len(producer.acked), 3 * LEASE_S))
    d = await delivery(r, producer.acked)
    snap = await r.monitor.snapshot()
    result.add(
        *delivery_figures(d),
        *producer_figures(producer, d.done, set()),
        *resume_figures(windows, pool, d.found),
        info("redis blackhole: until all workers logged 'unreachable'", noticed(windows, pool)),
        info("retries by class", {c: v.get("retried", 0) for c, v in snap.by_class.items()} if snap else "?"),
        info("dead-lettered", d.dead_lettered_stat),
        info("jobs graphsim received twice or more", d.sent_twice),
        info("proxy resets (redis, graph)", f"{to_redis.stats().resets}, {to_graph.stats().resets}"),
        *log_figures(r),
    )


# -- order: 50 chats x 20 messages through 503s ----------------------------------------------------


async def feed_503s(sim: Sim, rng: random.Random) -> None:
    """Keep about one chat post in ten failing with 503: after each injected 503 is taken, wait for
    5-13 more posts (9 on average), then arm the next one (it hits the post after)."""
    state = sim.server.state
    arm_at = rng.randint(5, 13)
    armed = False
    while True:
        await asyncio.sleep(0.02)
        if armed:
            if state.faults():
                continue
            armed = False
            arm_at = sim.count("POST", "/chats/") + rng.randint(5, 13)
        if sim.count("POST", "/chats/") >= arm_at:
            state.add_fault(Fault(method="POST", path="/chats/*/messages", status=503, times=1))
            armed = True


def chat_lines(chats: list[str], per_chat: int) -> list[str]:
    """One producer's JSONL: message 0 of each of its chats, then message 1, ..."""
    return [
        json.dumps({"type": "teams_message", "payload": {"chat_id": chat, "content": f"{chat}/m{i:03d}"}})
        for i in range(per_chat)
        for chat in chats
    ]


def out_of_order(posted: dict[str, list[str]], chats: list[str], per_chat: int) -> tuple[int, int, int]:
    """(chats whose accepted posts are not in enqueue order, messages missing, duplicate posts)."""
    disordered = missing = duplicates = 0
    for chat in chats:
        got = posted.get(chat, [])
        first_seen = list(dict.fromkeys(got))
        want = [f"{chat}/m{i:03d}" for i in range(per_chat)]
        disordered += first_seen != [m for m in want if m in first_seen]
        missing += len(set(want) - set(got))
        duplicates += len(got) - len(first_seen)
    return disordered, missing, duplicates


async def case_order(r: Rig, opts: Options, result: CaseResult) -> None:
    per_chat, producers = 20, 4
    chats = [f"19:chaos-{opts.seed}-{c}" for c in range(opts.scaled(50, 4))]
    env = r.env()
    r.workers(opts.workers, env)
    feeder = asyncio.create_task(feed_503s(r.sim, random.Random(opts.seed)))
    try:
        jobs = [chat_lines(chats[k::producers], per_chat) for k in range(producers)]
        r.log(f"{producers} producers enqueueing {len(chats)} chats x {per_chat} messages")
        await asyncio.gather(*(asyncio.to_thread(enqueue_cli, env, lines) for lines in jobs))
        total = len(chats) * per_chat
        await bounded(result, 60 + total * 0.25, "every message posted", r.monitor.wait_drained(total, 3 * LEASE_S))
    finally:
        await stopped(feeder)
    posted = r.sim.chat_posts()
    disordered, missing, duplicates = out_of_order(posted, chats, per_chat)
    snap = await r.monitor.snapshot()
    requests = r.sim.server.state.requests()
    failed = sum(1 for q in requests if q.path.startswith("/chats/") and q.status == 503)
    attempts = sum(1 for q in requests if q.method == "POST" and q.path.startswith("/chats/"))
    result.add(
        info("messages enqueued", len(chats) * per_chat),
        info("posts accepted (201)", sum(len(v) for v in posted.values())),
        info("posts failed with 503 (share of posts)", f"{failed} ({failed / max(1, attempts):.0%})"),
        info("retries (stats)", snap.retried if snap else "?"),
        info("dead-lettered (stats)", snap.dead_lettered if snap else "?"),
        equals("chats out of order", disordered, 0),
        equals("messages missing", missing, 0),
        info("duplicate posts", duplicates),
        equals("outcomes counted twice", (snap.completed if snap else 0) - len(completion_times(_all(r))), 0),
        *log_figures(r),
    )


# -- failover: Redis Sentinel, the master SIGKILLed, with and without REDIS_WAIT_REPLICAS ------------


async def case_failover(r: Rig, opts: Options, result: CaseResult) -> None:
    for as_replica, wait in ((True, 0), (True, 1), (False, 0), (False, 1)):
        plan = Plan(wait_replicas=wait, workers=opts.workers, jobs_per_s=100.0, deliveries_per_s=40.0,
                    before_kill_s=5.0, after_failover_s=8.0, graph_latency_s=opts.graph_latency_s,
                    rejoin_as_replica=as_replica, drain_limit_s=90.0)  # fmt: skip
        rejoin = "replica" if as_replica else "master"
        r.log(f"REDIS_WAIT_REPLICAS={wait}, old master restarted as a {rejoin}: figures prefixed W{wait}/{rejoin}")
        f = await run_failover(r.tmp / f"wait{wait}-{rejoin}", plan)
        p = f"W{wait}/{rejoin}: "
        judged = equals if wait else (lambda name, value, _want: info(name, value))
        result.add(
            info(p + "kill -> sentinels name the new master (s)", f.failover_at - f.killed_at),
            info(p + "kill -> old master a replica again (s)", f.rejoined_at - f.killed_at),
            info(p + "kill -> first acknowledged enqueue (s)", f.ack_resumed_s),
            info(p + "kill -> first 202 (s)", f.accept_resumed_s),
            info(p + "kill -> first completion on the new master (s)", f.completing_resumed_s),
            info(p + "enqueues acknowledged / unavailable", f"{len(f.acked)}/{f.unavailable}"),
            info(p + "deliveries answered 202 / 503", f"{len(f.accepted)}/{f.refused}"),
            judged(p + "acknowledged enqueues lost", len(f.lost_jobs), 0),
            judged(p + "202s for deliveries lost", len(f.lost_deliveries), 0),
            equals(p + "processes needing a restart by hand", " ".join(f.dead) or 0, 0),
            equals(p + "failures other than unavailable", dict(f.errors) or 0, 0),
            info(p + "jobs graphsim received twice or more", f.sent_twice),
            info(p + "tracebacks in the logs", f.tracebacks),
        )  # fmt: skip


def _all(r: Rig) -> list[Outcome]:
    return [o for pool in r.pools for o in outcomes(pool)]


# -- the command line -------------------------------------------------------------------------------

Case = Callable[[Rig, Options, CaseResult], Coroutine[Any, Any, None]]
CASES: dict[str, tuple[Case, str]] = {
    "kill": (case_kill, "SIGKILL a random worker every 3-8 s"),
    "term": (case_term, "rolling SIGTERM restarts every 10 s"),
    "redis": (case_redis, "redis-server SIGKILLed and restarted on its AOF, twice"),
    "network": (case_network, "latency, blackholes and resets to Redis, then to graphsim"),
    "order": (case_order, "Teams messages per chat in order through 503s"),
    "failover": (case_failover, "Sentinel: the master SIGKILLed, with and without REDIS_WAIT_REPLICAS"),
    "fuzz": (case_fuzz, "tests/fuzz/ (schemathesis on the API, hypothesis on the receiver) at length"),
}
CASE_LIMIT_S = {
    "kill": 900.0,
    "term": 900.0,
    "redis": 600.0,
    "network": 900.0,
    "order": 900.0,
    "failover": 900.0,
    "fuzz": FUZZ_LIMIT_S,
}


async def run_case(name: str, opts: Options) -> CaseResult:
    case, what = CASES[name]
    result = CaseResult(name)
    print(f"\n== {name}: {what} (jobs={opts.jobs}, seed={opts.seed}, workers={opts.workers}, "
          f"sendMail latency={opts.graph_latency_s} s)", flush=True)  # fmt: skip
    started = time.monotonic()
    limit = CASE_LIMIT_S[name] * max(1.0, opts.scale)
    try:
        async with asyncio.timeout(limit), rig(name, opts.keep_logs) as r:
            await case(r, opts, result)
    except TimeoutError:
        result.error = f"the case's overall time limit ({limit:.0f} s) was hit"
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.monotonic() - started
    if result.error:
        print(f"  !! {result.error}", flush=True)
    print(f"  -> {'PASS' if result.ok else 'FAIL'} in {result.seconds:.1f} s", flush=True)
    return result


def parse_args(argv: list[str] | None) -> tuple[Options, str]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="kill/term jobs; scales the other cases")
    parser.add_argument("--seed", type=int, default=1, help="seeds which worker dies when, and the 503s")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--graph-latency", type=float, default=0.1, help="graphsim's sendMail answer delay, s")
    parser.add_argument("--keep-logs", action="store_true", help="keep each case's temp dir (worker logs)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.workers < 1:
        parser.error("--jobs and --workers must be at least 1")
    opts = Options(args.jobs, args.seed, args.workers, args.keep_logs, graph_latency_s=args.graph_latency)
    return opts, args.case


async def run(names: list[str], opts: Options, results: list[CaseResult]) -> None:
    # SIGTERM cancels the run like Ctrl-C does, so the running case still cleans up after itself.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    for name in names:
        results.append(await run_case(name, opts))


def main(argv: list[str] | None = None) -> int:
    opts, case = parse_args(argv)
    names = list(CASES) if case == "all" else [case]
    results: list[CaseResult] = []
    try:
        asyncio.run(run(names, opts, results))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\n!! interrupted: the running case was stopped and cleaned up", flush=True)
        results.append(CaseResult(names[len(results)] if len(results) < len(names) else "?", error="interrupted"))
    print("\n== summary\n" + summary(results), flush=True)
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
