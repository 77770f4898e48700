"""`graphworks dlq`: review, redrive, purge and export dead-lettered jobs."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from graphworks.cli.common import echo_err, opened_redis, run_async, settings_or_exit
from graphworks_core.errors import ErrorClass

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from worker.deadletter.models import DeadLetterEntry, DeadLetterFilter
    from worker.deadletter.redis_store import RedisDeadLetterStore
    from worker.triage import Triage

AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(value: str | None) -> timedelta | None:
    if value is None:
        return None
    match = AGE.match(value.strip())
    if not match:
        raise click.BadParameter(f"{value!r}: use a number and a unit, like 30m, 12h or 7d")
    return timedelta(seconds=float(match.group(1)) * UNITS[match.group(2)])


def filter_options(fn: Any) -> Any:
    opts = [
        click.option("--type", "job_type", default=None, help="Only this job type."),
        click.option("--class", "error_class", type=click.Choice([c.value for c in ErrorClass]), default=None),
        click.option("--graph-code", default=None, help="Only this Graph error code (e.g. TooManyRequests)."),
        click.option(
            "--status", "http_status", type=click.IntRange(100, 599), default=None, help="Only this final HTTP status."
        ),
        click.option("--reviewed/--unreviewed", default=None, help="Only reviewed (or unreviewed) entries."),
        click.option("--older-than", default=None, help="Last failure older than this (e.g. 7d, 12h)."),
        click.option("--newer-than", default=None, help="Last failure newer than this."),
    ]
    for option in reversed(opts):
        fn = option(fn)
    return fn


def build_filter(job_type: str | None, error_class: str | None, reviewed: bool | None,
                 older_than: str | None, newer_than: str | None, graph_code: str | None = None,
                 http_status: int | None = None) -> DeadLetterFilter:  # fmt: skip
    from worker.deadletter.models import DeadLetterFilter

    now = datetime.now(UTC)
    older, newer = parse_age(older_than), parse_age(newer_than)
    return DeadLetterFilter(
        type=job_type,
        error_class=ErrorClass(error_class) if error_class else None,
        graph_code=graph_code,
        status=http_status,
        reviewed=reviewed,
        until=now - older if older else None,
        since=now - newer if newer else None,
    )


def _line(e: DeadLetterEntry) -> str:
    status = e.status if e.status is not None else "-"
    flag = "reviewed" if e.reviewed else ""
    return (
        f"{e.id}  {e.type:<14} {e.error_class.value:<11} {status!s:<4} {e.graph_code or '-':<26} "
        f"attempts={len(e.attempts)} last={e.last_failure_at:%Y-%m-%d %H:%M:%S} {flag}"
    ).rstrip()


def _store(redis: aioredis.Redis) -> RedisDeadLetterStore:
    from worker.deadletter.redis_store import RedisDeadLetterStore

    return RedisDeadLetterStore(redis)


@click.group()
def dlq() -> None:
    """The dead-letter store: jobs that will not be retried any more."""


@dlq.command("list")
@filter_options
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of entries.")
@run_async
async def list_entries(job_type: str | None, error_class: str | None, reviewed: bool | None, older_than: str | None,
                       newer_than: str | None, graph_code: str | None, http_status: int | None, limit: int, offset: int,
                       as_json: bool) -> None:  # fmt: skip
    """List entries, newest failure first."""
    flt = build_filter(job_type, error_class, reviewed, older_than, newer_than, graph_code, http_status)
    async with opened_redis() as redis:
        page = await _store(redis).page(flt, limit=limit, offset=offset)
    if as_json:
        click.echo(json.dumps([e.model_dump(mode="json") for e in page.entries]))
        return
    for entry in page.entries:
        click.echo(_line(entry))
    more = f"; next page: --offset {page.next_offset}" if page.next_offset is not None else ""
    click.echo(f"{len(page.entries)} of {page.total} entries{more}", err=True)


@dlq.command()
@click.argument("entry_id")
@click.option("--json", "as_json", is_flag=True, help="Print the entry as JSON.")
@run_async
async def show(entry_id: str, as_json: bool) -> None:
    """Show one entry with every attempt."""
    async with opened_redis() as redis:
        entry = await _store(redis).get(entry_id)
    if entry is None:
        raise click.ClickException(f"no dead-letter entry {entry_id}")
    if as_json:
        click.echo(entry.model_dump_json())
        return
    click.echo(_line(entry))
    click.echo(f"  reason: {entry.reason}\n  message: {entry.message or '-'}")
    click.echo(f"  request-id: {entry.request_id or '-'}  client-request-id: {entry.client_request_id or '-'}")
    click.echo(
        f"  idempotency key: {entry.idempotency_key or '-'}  priority: {entry.priority}"
        f"  redrives: {entry.redrive_count}"
    )
    if entry.note:
        click.echo(f"  note: {entry.note}")
    click.echo("  attempts:")
    for a in entry.attempts:
        delay = f"retry in {a.delay_s:.3f}s" if a.delay_s is not None else "dead-lettered"
        click.echo(
            f"    {a.at:%Y-%m-%d %H:%M:%S.%f} {a.error_class.value:<11} {a.status or '-'} {a.graph_code or ''} {delay}"
        )
    click.echo("  payload: " + json.dumps(entry.payload))


def _triage(redis: aioredis.Redis) -> Triage:
    from graphworks_core.clock import SystemClock
    from worker.audit import AuditLog
    from worker.queue import JobQueue
    from worker.triage import Triage

    queue = JobQueue.from_settings(settings_or_exit(), redis, SystemClock())
    return Triage(_store(redis), queue, AuditLog(redis))


@dlq.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of groups.")
@click.option("--rebuild", is_flag=True, help="Count entries stored before groups existed (once, in batches).")
@run_async
async def groups(as_json: bool, rebuild: bool) -> None:
    """Dead letters grouped by (type, error class, Graph code, status), largest first."""
    async with opened_redis() as redis:
        store = _store(redis)
        if rebuild:
            counted = await store.rebuild_groups(lambda n, seen: echo_err(f"rebuild: {seen} entries read, {n} counted"))
            echo_err(f"rebuilt: {counted} entries counted")
        found = await store.groups()
    if as_json:
        click.echo(json.dumps([g.model_dump(mode="json") for g in found]))
        return
    for g in found:
        click.echo(
            f"{g.count:>7}  {g.type:<18} {g.error_class.value:<11} {g.status if g.status is not None else '-'!s:<4} "
            f"{g.graph_code or '-':<26} {g.first_at:%Y-%m-%d %H:%M} .. {g.last_at:%Y-%m-%d %H:%M}  e.g. {g.sample_id}"
        )
    click.echo(f"{len(found)} groups, {sum(g.count for g in found)} entries", err=True)


@dlq.command()
@click.argument("entry_id", required=False)
@click.option("--all", "all_", is_flag=True, help="Redrive every entry matching the filters, in batches.")
@click.option("--dry-run", is_flag=True, help="Only say how many would be redriven, with a sample; change nothing.")
@click.option("--batch", type=click.IntRange(1, 5000), default=500, show_default=True, help="Entries per batch.")
@filter_options
@run_async
async def retry(entry_id: str | None, all_: bool, dry_run: bool, batch: int, job_type: str | None,
                error_class: str | None, graph_code: str | None, http_status: int | None, reviewed: bool | None,
                older_than: str | None, newer_than: str | None) -> None:  # fmt: skip
    """Redrive ENTRY_ID (or --all matching): back on the queue with a fresh attempt budget."""
    if entry_id and (all_ or dry_run):
        raise click.UsageError("give an ENTRY_ID, or --all / --dry-run with filters")
    if not entry_id and not (all_ or dry_run):
        raise click.UsageError("give an ENTRY_ID or --all (or --dry-run to preview)")
    flt = build_filter(job_type, error_class, reviewed, older_than, newer_than, graph_code, http_status)
    async with opened_redis() as redis:
        triage = _triage(redis)
        if dry_run:
            preview = await triage.preview(flt)
            click.echo(f"would redrive {preview.matched} entries; the newest {len(preview.sample)}:")
            for entry in preview.sample:
                click.echo("  " + _line(entry))
            return
        if entry_id:
            result = await triage.retry(entry_id, role="cli")
        else:

            def progress(done: int, skipped: int) -> None:
                echo_err(f"redriven {done}, skipped {skipped} so far")

            result = await triage.redrive(flt, role="cli", batch=batch, progress=progress)
    for rid in result.redriven:
        click.echo(rid)
    for sid, why in result.skipped.items():
        click.echo(f"skipped {sid}: {why}", err=True)
    click.echo(f"redriven {len(result.redriven)}, skipped {len(result.skipped)}", err=True)
    if entry_id and result.skipped:
        raise SystemExit(1)


@dlq.command()
@click.argument("entry_id")
@click.option("--note", default=None, help="What was found or done.")
@click.option("--unreview", is_flag=True, help="Mark as not reviewed.")
@run_async
async def review(entry_id: str, note: str | None, unreview: bool) -> None:
    """Mark an entry reviewed, with a note."""
    async with opened_redis() as redis:
        entry = await _triage(redis).review(entry_id, note, role="cli", reviewed=not unreview)
    if entry is None:
        raise click.ClickException(f"no dead-letter entry {entry_id}")
    click.echo(_line(entry))


@dlq.command()
@filter_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@run_async
async def purge(job_type: str | None, error_class: str | None, reviewed: bool | None, older_than: str | None,
                newer_than: str | None, graph_code: str | None, http_status: int | None,
                yes: bool) -> None:  # fmt: skip
    """Delete entries matching the filters (e.g. --older-than 30d --reviewed)."""
    from worker.deadletter.models import DeadLetterFilter

    flt = build_filter(job_type, error_class, reviewed, older_than, newer_than, graph_code, http_status)
    if flt == DeadLetterFilter() and not yes:
        raise click.UsageError("purging every entry needs --yes (or narrow it with filters)")
    async with opened_redis() as redis:
        removed = await _triage(redis).purge(flt, role="cli")
    click.echo(f"purged {removed} entries")


@dlq.command()
@filter_options
@click.option("--out", type=click.File("w"), default="-", show_default=True, help="JSONL file to write.")
@run_async
async def export(job_type: str | None, error_class: str | None, reviewed: bool | None, older_than: str | None,
                 newer_than: str | None, graph_code: str | None, http_status: int | None,
                 out: Any) -> None:  # fmt: skip
    """Export matching entries as JSONL, one entry per line."""
    from worker.deadletter.export import export_jsonl

    flt = build_filter(job_type, error_class, reviewed, older_than, newer_than, graph_code, http_status)
    async with opened_redis() as redis:
        count = await export_jsonl(_store(redis), out, flt)
    if out is not sys.stdout:
        out.flush()
    click.echo(f"exported {count} entries", err=True)
