"""`graphworks queue pause|resume|clear TYPE`: the same functions as `/api/queue/{type}/...`
(worker/pause.py), recorded in the audit log with the role `cli`."""

from __future__ import annotations

import click

from graphworks.cli.common import opened_redis, run_async, settings_or_exit


def _type(value: str) -> str:
    from graphworks_core.payloads import PAYLOAD_MODELS

    if value not in PAYLOAD_MODELS:
        raise click.BadParameter(f"unknown job type {value!r}; known: {', '.join(sorted(PAYLOAD_MODELS))}")
    return value


@click.group()
def queue() -> None:
    """Pause, resume or clear one job type, for every worker."""


@queue.command()
@click.argument("job_type", metavar="TYPE")
@run_async
async def pause(job_type: str) -> None:
    """Its jobs wait, spending no attempt, until resumed (survives restarts)."""
    from graphworks_core.clock import SystemClock
    from worker.audit import AuditLog
    from worker.pause import QueueControl
    from worker.queue import JobQueue

    job_type = _type(job_type)
    settings = settings_or_exit()
    async with opened_redis(settings) as redis:
        control = QueueControl(redis, JobQueue.from_settings(settings, redis, SystemClock()), settings)
        changed = await control.pause(job_type)
        await AuditLog(redis).record("queue.pause", role="cli", target=job_type, count=int(changed))
    click.echo(f"{job_type} paused" + ("" if changed else " (it already was)"))


@queue.command()
@click.argument("job_type", metavar="TYPE")
@run_async
async def resume(job_type: str) -> None:
    """Its parked jobs go back to the queue, ahead of what came since, in their order."""
    from graphworks_core.clock import SystemClock
    from worker.audit import AuditLog
    from worker.pause import QueueControl
    from worker.queue import JobQueue

    job_type = _type(job_type)
    settings = settings_or_exit()
    async with opened_redis(settings) as redis:
        control = QueueControl(redis, JobQueue.from_settings(settings, redis, SystemClock()), settings)
        moved = await control.resume(job_type)
        await AuditLog(redis).record("queue.resume", role="cli", target=job_type, count=moved)
    click.echo(f"{job_type} resumed; {moved} parked job(s) back in the queue")


@queue.command()
@click.argument("job_type", metavar="TYPE")
@click.option("--status", type=click.Choice(["queued", "scheduled"]), required=True)
@click.option("--confirm", default=None, metavar="TYPE", help="The job type again; nothing is removed without it.")
@run_async
async def clear(job_type: str, status: str, confirm: str | None) -> None:
    """Cancel every queued (due now) or scheduled (due later) job of TYPE; prints the count."""
    from typing import cast

    from graphworks_core.clock import SystemClock
    from worker.audit import AuditLog
    from worker.pause import ClearStatus, QueueControl
    from worker.queue import JobQueue

    job_type = _type(job_type)
    if confirm != job_type:
        raise click.UsageError(f"--confirm {job_type} is required to clear {job_type}'s {status} jobs; nothing removed")
    settings = settings_or_exit()
    async with opened_redis(settings) as redis:
        control = QueueControl(redis, JobQueue.from_settings(settings, redis, SystemClock()), settings)
        cleared = await control.clear(job_type, cast(ClearStatus, status))
        await AuditLog(redis).record(
            "queue.clear", role="cli", target=job_type, count=cleared.cleared, detail=f"status={status}"
        )
    click.echo(str(cleared.cleared))
