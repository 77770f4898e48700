"""`graphworks subscriptions list|create|renew|delete`: Graph subscriptions and their registry."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from graphworks.cli.common import opened_redis, run_async, settings_or_exit
from graphworks_core.errors import GraphHTTPError, JobFailure

if TYPE_CHECKING:
    from worker.subscriptions.manager import SubscriptionManager

T = TypeVar("T")


async def _with_manager(work: Callable[[SubscriptionManager], Awaitable[T]]) -> T:
    from graphworks_core.clock import SystemClock
    from worker.graph.auth import token_provider_from
    from worker.graph.client import GraphClient
    from worker.subscriptions.renewal import build_manager

    settings = settings_or_exit()
    async with opened_redis(settings) as redis:
        graph = GraphClient(settings.graph_base, token_provider_from(settings), timeout_s=settings.graph_call_timeout_s)
        try:
            return await work(build_manager(graph, redis, settings, SystemClock()))
        except GraphHTTPError as exc:
            raise click.ClickException(
                f"Graph answered {exc.status} {exc.graph_code or ''}: {exc.message or ''}"
            ) from exc
        except JobFailure as exc:
            raise click.ClickException(f"Graph call failed: {exc}") from exc
        finally:
            await graph.close()


@click.group()
def subscriptions() -> None:
    """Graph change-notification subscriptions this suite created (kept in Redis)."""


@subscriptions.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@run_async
async def list_(as_json: bool) -> None:
    """Subscriptions in the registry, soonest expiry first (clientState is never shown)."""
    records = await _with_manager(lambda m: m.list())
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json", exclude={"client_state_sha256"}) for r in records]))
        return
    if not records:
        click.echo("no subscriptions")
    for r in records:
        click.echo(
            f"{r.id}  {r.change_type:<24} {r.resource}  expires {r.expiration.isoformat()}  -> {r.notification_url}"
        )


@subscriptions.command()
@click.option("--resource", required=True, help="e.g. users/{id}/messages, chats/{id}/messages")
@click.option("--change-type", required=True, help="created, updated, deleted (comma-separated)")
@click.option("--notification-url", default=None, help="default: $WEBHOOK_PUBLIC_URL/webhooks/graph")
@click.option("--lifecycle-url", default=None, help="default: $WEBHOOK_PUBLIC_URL/webhooks/graph/lifecycle if set")
@click.option("--expiration-minutes", type=click.IntRange(1), default=None, help="default: the resource's maximum")
@click.option("--include-resource-data", is_flag=True, help="rich notifications (needs WEBHOOK_ENCRYPTION_KEYS)")
@click.option("--tenant-id", default=None, help="the tenant notifications must name [GRAPH_TENANT_ID]")
@run_async
async def create(
    resource: str,
    change_type: str,
    notification_url: str | None,
    lifecycle_url: str | None,
    expiration_minutes: int | None,
    include_resource_data: bool,
    tenant_id: str | None,
) -> None:
    """Create a subscription (Graph validates our URLs first); prints its id."""
    public = settings_or_exit().webhook_public_url
    base = str(public).rstrip("/") if public else None
    notification_url = notification_url or (f"{base}/webhooks/graph" if base else None)
    if notification_url is None:
        raise click.UsageError("give --notification-url (or set WEBHOOK_PUBLIC_URL)")
    if lifecycle_url is None and base:
        lifecycle_url = f"{base}/webhooks/graph/lifecycle"
    record = await _with_manager(
        lambda m: m.create(
            resource,
            change_type,
            notification_url,
            lifecycle_url=lifecycle_url,
            expiration_minutes=expiration_minutes,
            include_resource_data=include_resource_data,
            tenant_id=tenant_id,
        )
    )
    click.echo(record.id)


@subscriptions.command()
@click.argument("subscription_id")
@run_async
async def renew(subscription_id: str) -> None:
    """Extend a subscription to its resource's maximum (recreated if Graph no longer has it)."""
    try:
        record = await _with_manager(lambda m: m.renew(subscription_id))
    except KeyError as exc:
        raise click.ClickException(f"no subscription {subscription_id} in the registry") from exc
    click.echo(f"{record.id} expires {record.expiration.isoformat()}")


@subscriptions.command()
@click.argument("subscription_id")
@run_async
async def delete(subscription_id: str) -> None:
    """Delete a subscription at Graph and forget it."""
    existed = await _with_manager(lambda m: m.delete(subscription_id))
    click.echo(f"deleted {subscription_id}" if existed else f"{subscription_id} was already gone at Graph; forgotten")
