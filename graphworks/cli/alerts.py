"""`graphworks alerts [--json]`: the active alerts, the same function as `GET /api/queue/alerts`
(worker/alerts.py `active_alerts`)."""

from __future__ import annotations

import json

import click

from graphworks.cli.common import opened_redis, run_async, settings_or_exit


@click.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON array of the active alerts.")
@run_async
async def alerts(as_json: bool) -> None:
    """List the active alerts, most severe first (thresholds: the [alerts] table)."""
    import time

    from worker.alerts import active_alerts
    from worker.config_file import load_file_config

    settings = settings_or_exit()
    config = load_file_config(settings.graphworks_config).alerts
    async with opened_redis(settings) as redis:
        active = await active_alerts(redis, config, time.time())
    if as_json:
        click.echo(json.dumps([a.model_dump() for a in active]))
        return
    if not active:
        click.echo("no active alerts")
    for a in active:
        click.echo(f"{a.level:<8} {a.id:<40} {a.message}")
