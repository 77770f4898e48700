"""`graphworks enqueue`: one job from flags, or many from a JSONL file (all or nothing)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

import click

from graphworks.cli.common import opened_redis, run_async, settings_or_exit
from graphworks_core.errors import EnqueueError

if TYPE_CHECKING:
    from worker.client import JobRequest

COMMON = [
    click.option("--priority", type=click.IntRange(1, 10), default=5, show_default=True, help="10 runs first."),
    click.option("--idempotency-key", default=None, help="A second enqueue with this key returns the first job's id."),
    click.option("--defer-s", type=click.FloatRange(min=0), default=None, help="Run no sooner than this many seconds."),
    click.option(
        "--ordering-key",
        default=None,
        help="Jobs with one key run one at a time, in enqueue order (default for Teams: the chat or channel).",
    ),
]


def common_options(fn: Any) -> Any:
    for option in reversed(COMMON):
        fn = option(fn)
    return fn


async def _enqueue_one(
    job_type: str, payload: dict[str, Any], priority: int, key: str | None, defer: float | None, order: str | None
) -> None:
    from worker.client import GraphworksClient

    settings = settings_or_exit()
    async with opened_redis(settings) as redis:
        job_id = await GraphworksClient(redis, settings).enqueue(
            job_type, payload, priority=priority, idempotency_key=key, defer_by=defer, ordering_key=order
        )
    click.echo(job_id)


def read_jobs(stream: TextIO) -> list[JobRequest]:
    """Parse every line first; a bad line names its number and nothing is enqueued."""
    import pydantic

    from worker.client import JobRequest, validate_payload

    jobs: list[JobRequest] = []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            job = JobRequest.model_validate_json(line)
            validate_payload(job.type, job.payload)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            raise EnqueueError(f"line {number}: {where}: {first['msg']}; nothing was enqueued") from exc
        except EnqueueError as exc:
            raise EnqueueError(f"line {number}: {exc}; nothing was enqueued") from exc
        jobs.append(job)
    return jobs


@click.group(invoke_without_command=True)
@click.option("--file", "jobs_file", type=click.File("r"), default=None, help="JSONL of jobs ('-' for stdin).")
@click.pass_context
@run_async
async def enqueue(ctx: click.Context, jobs_file: TextIO | None) -> None:
    """Enqueue jobs; each prints its job id on stdout.

    With --file, each line is {"type": T, "payload": {...}} with optional priority,
    idempotency_key, defer_s and ordering_key; the file is checked whole before anything is stored, and the
    jobs go to Redis in pipelined batches.
    """
    if ctx.invoked_subcommand is not None:
        return
    if jobs_file is None:
        click.echo(ctx.get_help())
        raise SystemExit(2)
    from worker.client import GraphworksClient

    jobs = read_jobs(jobs_file)
    settings = settings_or_exit()
    async with opened_redis(settings) as redis:
        ids = await GraphworksClient(redis, settings).enqueue_many(jobs)
    sys.stdout.write("".join(f"{i}\n" for i in ids))
    click.echo(f"enqueued {len(ids)} jobs", err=True)


@enqueue.command("teams-message")
@click.option("--chat-id", default=None, help="Chat to post to (or --team-id with --channel-id).")
@click.option("--team-id", default=None)
@click.option("--channel-id", default=None)
@click.option("--content", required=True, help="Message body.")
@click.option("--html", is_flag=True, help="The content is HTML (default: text).")
@click.option("--sender", default=None, help="User the message is sent as (delegated token).")
@click.option("--importance", type=click.Choice(["normal", "high", "urgent"]), default="normal", show_default=True)
@common_options
def teams_message(
    chat_id: str | None, team_id: str | None, channel_id: str | None, content: str, html: bool,
    sender: str | None, importance: str, priority: int, idempotency_key: str | None, defer_s: float | None,
    ordering_key: str | None,
) -> None:  # fmt: skip
    """Post a Teams chat or channel message."""
    payload: dict[str, Any] = {"content": content, "importance": importance, "content_type": "html" if html else "text"}
    for name, value in (("chat_id", chat_id), ("team_id", team_id), ("channel_id", channel_id), ("sender", sender)):
        if value is not None:
            payload[name] = value
    run_async(_enqueue_one)("teams_message", payload, priority, idempotency_key, defer_s, ordering_key)


@enqueue.command("mail")
@click.option("--mailbox", required=True, help="User or shared mailbox that sends.")
@click.option("--to", "to", multiple=True, required=True, help="Recipient; repeat for more.")
@click.option("--cc", multiple=True)
@click.option("--bcc", multiple=True)
@click.option("--subject", required=True)
@click.option("--body", required=True)
@click.option("--html", is_flag=True, help="The body is HTML (default: text).")
@common_options
def mail(
    mailbox: str, to: tuple[str, ...], cc: tuple[str, ...], bcc: tuple[str, ...], subject: str, body: str,
    html: bool, priority: int, idempotency_key: str | None, defer_s: float | None, ordering_key: str | None,
) -> None:  # fmt: skip
    """Send an Outlook mail with sendMail."""
    payload = {
        "mailbox": mailbox, "to": list(to), "cc": list(cc), "bcc": list(bcc),
        "subject": subject, "body": body, "body_type": "html" if html else "text",
    }  # fmt: skip
    run_async(_enqueue_one)("mail", payload, priority, idempotency_key, defer_s, ordering_key)
