"""`graphworks serve`: the webhook receiver under uvicorn (the ops API joins it in a later issue)."""

from __future__ import annotations

import click

from graphworks.cli.common import echo_err, settings_or_exit


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="uvicorn worker processes [WEBHOOK_WORKERS]")
def serve(host: str, port: int, workers: int | None) -> None:
    """Serve POST /webhooks/graph, POST /webhooks/graph/lifecycle and GET /api/queue/health.

    Change notifications are checked (clientState, subscription, tenant, validation tokens); a
    delivery's valid items are stored as one `notification_batch` job before the 202; a worker runs it.
    """
    import uvicorn

    settings = settings_or_exit()
    if not settings.redis_url:
        raise click.ClickException("REDIS_URL is not set: the receiver stores notifications as jobs in Redis")
    echo_err(f"graphworks serve: receiver at http://{host}:{port}/webhooks/graph (and /webhooks/graph/lifecycle)")
    uvicorn.run(
        "webhooks.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.webhook_workers,
        access_log=False,
        log_level="warning",
        lifespan="on",
        # Graph's deliveries are small and keep-alive connections are reused; nothing to tune here.
        server_header=False,
    )
