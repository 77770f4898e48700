"""`graphworks jobs show|wait|cancel|list`: follow a job by its id (worker/status.py)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from graphworks.cli.common import opened_redis, run_async, settings_or_exit
from graphworks_core.status import JOB_STATES

if TYPE_CHECKING:
    from graphworks_core.status import JobStatus
    from worker.client import GraphworksClient

EXIT_FAILED, EXIT_TIMEOUT = 1, 3


def _client(redis: object) -> GraphworksClient:
    from worker.client import GraphworksClient

    return GraphworksClient(redis, settings_or_exit())  # type: ignore[arg-type]


def _human(record: JobStatus) -> str:
    lines = [
        f"job {record.id}  {record.type}  {record.status}",
        f"  priority {record.priority}  created {record.created_at:%Y-%m-%d %H:%M:%S}"
        f"  updated {record.updated_at:%Y-%m-%d %H:%M:%S}",
    ]
    if record.next_run_at:
        lines.append(f"  next run {record.next_run_at:%Y-%m-%d %H:%M:%S}")
    if record.ordering_key:
        lines.append(f"  ordering key {record.ordering_key}")
    if record.idempotency_key:
        lines.append(f"  idempotency key {record.idempotency_key}")
    if record.progress:
        total = f"/{record.progress.total}" if record.progress.total is not None else ""
        lines.append(f"  progress {record.progress.done}{total} {record.progress.unit}")
    for attempt in record.attempts:
        delay = f"retry in {attempt.delay_s:.1f}s" if attempt.delay_s is not None else "final"
        lines.append(
            f"  attempt {attempt.at:%H:%M:%S} {attempt.error_class} status={attempt.status}"
            f" graph_code={attempt.graph_code} {delay}"
        )
    if record.result:
        lines.append("  result " + json.dumps(record.result, sort_keys=True))
    if record.dead_letter_id:
        lines.append(f"  dead letter {record.dead_letter_id}  (graphworks dlq show {record.dead_letter_id})")
    return "\n".join(lines)


def _print(record: JobStatus, as_json: bool) -> None:
    click.echo(record.model_dump_json() if as_json else _human(record))


@click.group()
def jobs() -> None:
    """Follow jobs by id: their status record, result, attempts; wait for them; cancel them."""


@jobs.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the status record as one JSON object.")
@run_async
async def show(job_id: str, as_json: bool) -> None:
    """Print a job's status record: status, attempts, progress, result, dead-letter id."""
    from worker.status import JobNotFound

    async with opened_redis() as redis:
        try:
            _print(await _client(redis).status(job_id), as_json)
        except JobNotFound as exc:
            raise click.ClickException(str(exc)) from exc


@jobs.command()
@click.argument("job_id")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds to wait for the job to end.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the final status record as one JSON object.")
@run_async
async def wait(job_id: str, timeout_s: float, as_json: bool) -> None:
    """Wait until a job ends and print its final record.

    Exit 0 completed, 1 dead-lettered or cancelled, 3 still not ended after --timeout (the
    record as it stands is printed).
    """
    from worker.status import JobNotFound, WaitTimedOut

    async with opened_redis() as redis:
        try:
            record = await _client(redis).wait(job_id, timeout_s=timeout_s)
        except JobNotFound as exc:
            raise click.ClickException(str(exc)) from exc
        except WaitTimedOut as exc:
            _print(exc.record, as_json)
            click.echo(str(exc), err=True)
            sys.exit(EXIT_TIMEOUT)
    _print(record, as_json)
    if record.status != "completed":
        sys.exit(EXIT_FAILED)


@jobs.command()
@click.argument("job_id")
@run_async
async def cancel(job_id: str) -> None:
    """Cancel a queued or scheduled job, so it never runs. A running or ended job cannot be (exit 1)."""
    from worker.status import JobNotFound, NotCancellable

    async with opened_redis() as redis:
        try:
            record = await _client(redis).cancel(job_id)
        except (JobNotFound, NotCancellable) as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"cancelled {record.id}")


@jobs.command("list")
@click.option("--type", "job_type", default=None, help="Only this job type, e.g. teams_message or mail.")
@click.option("--status", type=click.Choice(JOB_STATES), default=None, help="Only jobs in this state.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", default=None, help="Continue after this job id (the `next:` line of the page before).")
@click.option("--json", "as_json", is_flag=True, help='Print {"jobs": [...], "next_cursor"} as one JSON object.')
@run_async
async def list_(job_type: str | None, status: str | None, limit: int, cursor: str | None, as_json: bool) -> None:
    """List jobs, newest first, with their status (status records are kept JOB_STATUS_TTL_S)."""
    async with opened_redis() as redis:
        page = await _client(redis).list_jobs(job_type, status=status, limit=limit, cursor=cursor)
    if as_json:
        body = {"jobs": [r.model_dump(mode="json") for r in page.jobs], "next_cursor": page.next_cursor}
        click.echo(json.dumps(body))
        return
    click.echo(f"{'id':<32}  {'type':<18}  {'status':<13}  {'attempts':>8}  created")
    for r in page.jobs:
        click.echo(f"{r.id:<32}  {r.type:<18}  {r.status:<13}  {len(r.attempts):>8}  {r.created_at:%Y-%m-%d %H:%M:%S}")
    if page.next_cursor:
        click.echo(f"next: --cursor {page.next_cursor}")
