"""`graphworks tokens set-refresh|delete|check`: the delegated refresh tokens Teams sends use.

A refresh token comes from the user's sign-in (an authorization-code flow run elsewhere, with the
`offline_access` scope); it is read from stdin, never from the command line (where `ps` and shell
history would keep it), and stored Fernet-encrypted with GRAPH_TOKEN_ENCRYPTION_KEY.
"""

from __future__ import annotations

import sys

import click

from graphworks.cli.common import opened_redis, run_async, settings_or_exit
from graphworks_core.errors import JobFailure


@click.group()
def tokens() -> None:
    """Delegated tokens per sender (encrypted in Redis)."""


@tokens.command("set-refresh")
@click.argument("sender")
@run_async
async def set_refresh(sender: str) -> None:
    """Store SENDER's refresh token, read from stdin."""
    from worker.graph.delegated import StoredTokens, delegated_provider_from

    refresh_token = sys.stdin.readline().strip()
    if not refresh_token:
        raise click.ClickException("no refresh token on stdin")
    settings = settings_or_exit()
    async with opened_redis(settings) as redis:  # run_async reports a ConfigError as one line
        provider = delegated_provider_from(settings, redis)
        await provider.store.put(sender, StoredTokens(refresh_token=refresh_token))
    click.echo(f"stored the refresh token for {sender}")


@tokens.command("check")
@click.argument("sender")
@run_async
async def check(sender: str) -> None:
    """Redeem SENDER's refresh token now (forcing a new access token) to prove it works."""
    from worker.graph.delegated import delegated_provider_from

    settings = settings_or_exit()
    async with opened_redis(settings) as redis:
        try:
            provider = delegated_provider_from(settings, redis)
            await provider.token(sender=sender, force_refresh=True)
        except JobFailure as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"the refresh token for {sender} works")


@tokens.command("delete")
@click.argument("sender")
@run_async
async def delete(sender: str) -> None:
    """Forget SENDER's tokens."""
    from worker.graph.delegated import delegated_provider_from

    settings = settings_or_exit()
    async with opened_redis(settings) as redis:
        provider = delegated_provider_from(settings, redis)
        found = await provider.store.delete(sender)
    click.echo(f"deleted the tokens of {sender}" if found else f"no tokens stored for {sender}")
