"""`graphworks schedules add|list|show|remove|pause|resume`: recurring schedules (worker/schedules.py)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from graphworks.cli.common import opened_redis, run_async, settings_or_exit

if TYPE_CHECKING:
    from worker.schedules import ScheduleInfo, ScheduleStore

T = TypeVar("T")


async def _with_store(work: Callable[[ScheduleStore], Awaitable[T]]) -> T:
    """Run `work` on the store of the Redis in the environment; a refused or unknown schedule exits 1."""
    from graphworks_core.clock import SystemClock
    from worker.queue import JobQueue
    from worker.schedules import ScheduleInvalid, ScheduleNotFound, ScheduleStore

    settings = settings_or_exit()
    clock = SystemClock()
    async with opened_redis(settings) as redis:
        store = ScheduleStore(redis, JobQueue.from_settings(settings, redis, clock), settings, clock)
        try:
            return await work(store)
        except ScheduleInvalid as exc:
            raise click.ClickException(f"{exc}; nothing was stored") from exc
        except ScheduleNotFound as exc:
            raise click.ClickException(str(exc)) from exc


def _when(dt: datetime | None) -> str:
    return "-" if dt is None else f"{dt:%Y-%m-%dT%H:%M:%SZ}"


def _cadence(info: ScheduleInfo) -> str:
    if info.every_s is not None:
        return f"every {info.every_s:g} s"
    return f"cron '{info.cron}'" + ("" if info.timezone == "UTC" else f" {info.timezone}")


def _summary(info: ScheduleInfo) -> str:
    state = "paused" if info.paused else f"next {_when(info.next_run_at)}"
    return f"{info.name}: {_cadence(info)}, {info.type} (priority {info.priority}), {state}"


def _dump(info: ScheduleInfo) -> dict[str, Any]:
    return info.model_dump(mode="json")


@click.group()
def schedules() -> None:
    """Recurring schedules: a job enqueued on a cron expression or every N seconds.

    Every worker looks for due schedules every SCHEDULE_TICK_S; each tick enqueues exactly one
    job however many workers run (idempotency key schedule:NAME:TICK). Ticks missed while no
    worker ran are coalesced into one run when one starts again, never a burst. A paused
    schedule enqueues nothing, and on resume runs from its next tick (no catch-up).
    """


@schedules.command()
@click.argument("name")
@click.option(
    "--cron", default=None, metavar="EXPR", help="Cron expression (5 fields; a 6th is seconds), read in --timezone."
)
@click.option(
    "--every",
    "every_s",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Every SECONDS instead, on multiples of it since the epoch.",
)
@click.option("--type", "job_type", required=True, metavar="T", help="Job type: teams_message, mail, sync, ...")
@click.option(
    "--payload",
    required=True,
    metavar="JSON",
    help="The job's payload as a JSON object, checked against the type's model.",
)
@click.option(
    "--priority", type=int, default=5, show_default=True, metavar="P", help="The jobs' priority, 1-10 (10 runs first)."
)
@click.option(
    "--timezone", default="UTC", show_default=True, metavar="TZ", help="IANA time zone the cron expression is read in."
)
@click.option("--paused", is_flag=True, help="Store it paused (resume starts it).")
@click.option("--json", "as_json", is_flag=True, help="Print the schedule as JSON.")
@run_async
async def add(
    name: str, cron: str | None, every_s: float | None, job_type: str, payload: str, priority: int,
    timezone: str, paused: bool, as_json: bool,
) -> None:  # fmt: skip
    """Create schedule NAME (or replace it: its next tick is then the first after now).

    Give exactly one of --cron or --every. Everything is checked before anything is stored: a bad
    cron expression, time zone, job type or payload exits 1 naming it.

    \b
    graphworks schedules add nightly-sync --cron "0 2 * * *" --timezone Europe/Berlin \\
        --type sync --payload '{"resource": "mail", "owner": "ops@contoso.com"}'
    graphworks schedules add heartbeat --every 60 --type teams_message \\
        --payload '{"chat_id": "19:ops", "content": "still here"}'
    """
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise click.ClickException(f"payload: not JSON ({exc}); nothing was stored") from exc
    if not isinstance(data, dict):
        raise click.ClickException("payload: must be a JSON object; nothing was stored")
    spec = {"name": name, "cron": cron, "every_s": every_s, "type": job_type, "payload": data,
            "priority": priority, "timezone": timezone, "paused": paused}  # fmt: skip
    from worker.schedules import ScheduleNotFound

    async def put(store: ScheduleStore) -> tuple[ScheduleInfo, bool]:
        try:
            await store.get(name)
            existed = True
        except ScheduleNotFound:
            existed = False
        return await store.put(spec), existed

    info, existed = await _with_store(put)
    if as_json:
        click.echo(json.dumps(_dump(info)))
    else:
        click.echo(f"{'replaced' if existed else 'added'} {_summary(info)}")


@schedules.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of schedules (with their recent runs).")
@run_async
async def list_(as_json: bool) -> None:
    """Every schedule, by name: its cadence, job type, last and next run, and last job id."""
    infos = await _with_store(lambda store: store.list())
    if as_json:
        click.echo(json.dumps([_dump(i) for i in infos]))
        return
    if not infos:
        click.echo("no schedules")
        return
    rows = [("NAME", "WHEN", "TYPE", "LAST RUN", "NEXT RUN", "LAST JOB")]
    for i in infos:
        rows.append((i.name, _cadence(i), i.type, _when(i.last_run_at),
                     "paused" if i.paused else _when(i.next_run_at), i.last_job_id or "-"))  # fmt: skip
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])


@schedules.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the schedule as JSON.")
@run_async
async def show(name: str, as_json: bool) -> None:
    """Schedule NAME: its spec, its next run and its recent runs (newest first) with their job ids."""
    info = await _with_store(lambda store: store.get(name))
    if as_json:
        click.echo(json.dumps(_dump(info)))
        return
    click.echo(_summary(info))
    click.echo(f"payload: {json.dumps(info.payload)}")
    click.echo(f"last run: {_when(info.last_run_at)}  job {info.last_job_id or '-'}")
    if info.runs:
        click.echo(f"recent runs ({len(info.runs)}):")
        for run in info.runs:
            click.echo(f"  {_when(run.tick)}  {run.job_id}")


@schedules.command()
@click.argument("name")
@run_async
async def remove(name: str) -> None:
    """Delete schedule NAME and its run history (jobs already enqueued stay)."""
    await _with_store(lambda store: store.remove(name))
    click.echo(f"removed {name}")


@schedules.command()
@click.argument("name")
@run_async
async def pause(name: str) -> None:
    """Stop enqueuing NAME's ticks, for every worker, until it is resumed."""
    info = await _with_store(lambda store: store.pause(name))
    click.echo(f"paused {info.name}")


@schedules.command()
@click.argument("name")
@run_async
async def resume(name: str) -> None:
    """Run NAME again from its next tick; ticks that passed while it was paused are not caught up."""
    info = await _with_store(lambda store: store.resume(name))
    click.echo(f"resumed {_summary(info)}")
