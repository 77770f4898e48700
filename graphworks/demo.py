"""`graphworks demo`: the whole pipeline in one command, on an embedded Redis and graphsim.

It sends a scripted mix (sends that succeed, one throttled with Retry-After, a 503 storm, a
failure Graph rejects, a payload refused at enqueue), runs a worker with a live display, prints
the stats and the dead-letter entries, then shows a redrive once graphsim has recovered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from rich.console import Console
from rich.live import Live
from rich.table import Table

from graphsim.faults import Fault
from graphsim.server import SimServer, run_in_thread
from graphsim.state import SimState
from graphsim.threaded_server import ThreadedServer
from graphworks.demo_dashboard import HeldWorker, start_dashboard
from graphworks.demo_webhooks import script_inbound, show_inbound
from graphworks.embedded_redis import EmbeddedRedis, start_redis
from graphworks.wiring import build_runner, build_worker
from graphworks_core.errors import ErrorClass, PayloadInvalid
from graphworks_core.settings import Settings, load_settings
from webhooks.app import ReceiverApp
from worker.arq_adapter import GraphworksWorker
from worker.client import GraphworksClient
from worker.redrive import redrive_matching
from worker.stats import Stats, StatsSnapshot

TOKEN = "demo-token"
console = Console()


def _table(snap: StatsSnapshot, elapsed_s: float, title: str) -> Table:
    table = Table(title=f"{title}  ({elapsed_s:4.1f} s)", title_justify="left")
    for column in ("completed", "retried", "dead-lettered", "queued", "scheduled", "dead-letter store"):
        table.add_column(column, justify="right")
    table.add_row(*(str(v) for v in (snap.completed, snap.retried, snap.dead_lettered, snap.queued, snap.scheduled,
                                      snap.dead_letter_size)))  # fmt: skip
    return table


async def _drain(worker: GraphworksWorker, stats: Stats, title: str) -> StatsSnapshot:
    """Run the worker until nothing is queued, running or scheduled, showing progress live."""
    started = time.monotonic()
    task = asyncio.create_task(worker.main())
    with Live(console=console, refresh_per_second=8, transient=False) as live:
        while not task.done():
            live.update(_table(await stats.snapshot(), time.monotonic() - started, title))
            await asyncio.wait({task}, timeout=0.15)
        snap = await stats.snapshot()
        live.update(_table(snap, time.monotonic() - started, title))
    task.result()
    return snap


async def _script(client: GraphworksClient, sim: SimState) -> None:
    sim.add_fault(Fault(method="POST", path="/chats/19:throttled/messages", status=429, retry_after="2.5"))
    sim.add_fault(Fault(method="POST", path="/users/storm@contoso.com/sendMail", status=503, times=None))
    sim.add_fault(Fault(method="POST", path="/chats/19:archived/messages", status=400, times=None,
                        graph_code="BadRequest", message="Chat is archived and cannot receive messages."))  # fmt: skip
    for i in range(5):
        await client.send_teams_message(chat_id=f"19:team-{i}", content=f"Build {i} passed", importance="normal")
        await client.send_mail(mailbox="ops@contoso.com", to=[f"dev{i}@contoso.com"], subject=f"Report {i}", body="ok")
    await client.send_teams_message(chat_id="19:throttled", content="This one meets a 429 with Retry-After: 2.5")
    await client.send_mail(mailbox="storm@contoso.com", to=["a@contoso.com"], subject="storm", body="503s")
    await client.send_teams_message(chat_id="19:archived", content="Graph rejects this one with 400", priority=8)
    console.print("enqueued 13 jobs: 10 plain sends, 1 throttled (429, Retry-After 2.5), 1 in a 503 storm, 1 a 400")
    try:
        await client.send_mail(mailbox="ops@contoso.com", to=["not-an-address"], subject="x", body="y")
    except PayloadInvalid as exc:
        console.print(f"refused at enqueue, nothing stored: [yellow]{exc}[/yellow]")


def _settings(redis_url: str, sim: SimServer) -> Settings:
    return load_settings(redis_url=redis_url, graph_base_url=sim.base_url, graph_static_token=TOKEN,
                         worker_poll_delay_s=0.01)  # fmt: skip


async def _demo(redis_url: str, sim: SimServer, fast: bool, log_path: Path) -> int:
    settings = _settings(redis_url, sim)
    redis = aioredis.Redis.from_url(redis_url)
    await redis.flushdb()
    runner = build_runner(settings, redis)
    if fast:
        # The real unavailable schedule is 1,2,4,8,16 s; the demo shows its shape at a tenth of it.
        runner.policies = runner.policies.with_overrides({ErrorClass.UNAVAILABLE: {"base_delay_s": 0.1}}, {})
    stats = Stats(redis)
    client = GraphworksClient(redis, settings)
    await _script(client, sim.state)
    worker = build_worker(runner, burst=True, handle_signals=False)
    snap = await _drain(worker, stats, "worker running")

    entries = (await runner.dlq.page(limit=20)).entries
    console.print(f"\n[bold]dead-letter store[/bold] ({len(entries)} entries; full log in {log_path})")
    for e in entries:
        console.print(f"  {e.id}  {e.type:<13} {e.error_class.value:<11} status={e.status} {e.graph_code or ''}"
                      f"  attempts={len(e.attempts)}  reason: {e.reason}")  # fmt: skip
    by_class = ", ".join(f"{c}: {n['retried']}" for c, n in sorted(snap.by_class.items()) if n.get("retried"))
    console.print(f"retries by error class: {by_class}")
    env = f"REDIS_URL={redis_url} GRAPH_BASE_URL={sim.base_url} GRAPH_STATIC_TOKEN={TOKEN}"
    console.print("\nInspect and redrive them (while `graphworks demo --hold` keeps Redis and graphsim up):")
    console.print(f"  {env} graphworks dlq list\n  {env} graphworks dlq show <ID>\n  {env} graphworks dlq retry --all")

    console.print("\n[bold]graphsim recovers[/bold] (faults cleared); redriving every entry ...")
    sim.state.clear_faults()
    result = await redrive_matching(runner.dlq, runner.queue)
    console.print(f"redriven {len(result.redriven)} entries")
    worker = build_worker(runner, burst=True, handle_signals=False)
    final = await _drain(worker, stats, "after redrive")
    sends_ok = final.completed == 13 and final.dead_letter_size == 0

    console.print("\n[bold]inbound[/bold]: a subscription, change notifications, a delta sync")
    receiver = ThreadedServer(ReceiverApp(settings), name="receiver", lifespan="on").start()
    try:
        await script_inbound(console, settings, redis, sim, runner, receiver.url)
        worker = build_worker(runner, burst=True, handle_signals=False)
        final = await _drain(worker, stats, "notifications -> inbound fetch, sync")
    finally:
        receiver.stop()
    inbound = await show_inbound(console, redis)
    await runner.graph.close()
    await redis.aclose()
    console.print()
    ok = sends_ok and final.dead_letter_size == 0 and inbound == 4
    console.print("[green]demo done: every job delivered[/green]" if ok else "[red]demo: not every job delivered[/red]")
    return 0 if ok else 1


class DemoStopped(SystemExit):
    """SIGTERM or SIGHUP: raised in the main thread, a SystemExit so that asyncio lets it through."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


class _StopSignals:
    """SIGTERM and SIGHUP end the demo like Ctrl-C does, cleanup included, instead of killing it.

    The first one raises DemoStopped (unless the cleanup has begun: then it lets the cleanup
    finish); later ones are ignored, the cleanup being bounded. A signal ignored when the demo
    started (`nohup`) stays ignored. The embedded Redis dies with this process anyway
    (embedded_redis), so a SIGKILL leaves nothing running either.
    """

    SIGNALS = tuple(s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.cleaning_up = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        if not self.cleaning_up:
            raise DemoStopped(signum)

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():  # signal.signal's requirement
            for s in self.SIGNALS:
                if signal.getsignal(s) is not signal.SIG_IGN:
                    self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous)


def run_demo(data_dir: str, *, fast: bool = True, hold: bool = False, dashboard_port: int = 0) -> int:
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "demo.log"
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)

    code = 1
    embedded: EmbeddedRedis | None = None
    sim: SimServer | None = None
    dashboard: ThreadedServer | None = None
    held: HeldWorker | None = None
    with _StopSignals() as stop:
        try:
            redis_url = os.environ.get("REDIS_URL")
            if not redis_url:
                embedded = start_redis(directory / "redis", appendonly=True, prefer_bundled=True)
                redis_url = embedded.url
                console.print(f"embedded Redis on {redis_url} (data in {directory / 'redis'})")
            sim = run_in_thread(state=SimState(expected_token=TOKEN))
            console.print(f"graphsim on {sim.base_url}")
            dashboard, token = start_dashboard(_settings(redis_url, sim), dashboard_port)
            console.print(f"dashboard: {dashboard.url}/dashboard")
            console.print(f"sign in with the token: {token}")
            code = asyncio.run(_demo(redis_url, sim, fast, log_path))
            if hold:
                held = HeldWorker(_settings(redis_url, sim), sim).start()
                console.print(f"\n[bold]holding[/bold]: the dashboard, a worker, Redis and graphsim stay up; "
                              f"{held.left} jobs were left to dead-letter (Graph refuses them, then accepts: "
                              f"redrive them from {dashboard.url}/dashboard#/dead-letters)")  # fmt: skip
                console.print(f"dashboard: {dashboard.url}/dashboard  token: {token}")
                console.print("Ctrl-C (or SIGTERM) to stop")
                with contextlib.suppress(KeyboardInterrupt):
                    while True:
                        time.sleep(3600)
        except DemoStopped:
            pass  # stop.signum says which; reported once everything is down
        except KeyboardInterrupt:
            code = 130
            with contextlib.suppress(OSError):
                console.print("\ninterrupted; stopping Redis and graphsim")
        finally:
            stop.cleaning_up = True
            if held is not None:
                held.stop()
            if dashboard is not None:
                dashboard.stop()
            if sim is not None:
                sim.stop()
            if embedded is not None:
                embedded.stop()
    if stop.signum is not None:
        with contextlib.suppress(OSError):  # after a SIGHUP the terminal may be gone
            console.print(f"\nstopped by {signal.Signals(stop.signum).name}; Redis and graphsim are down")
        return 128 + stop.signum
    return code
