"""`graphworks serve --role webhooks|api|all`: the webhook receiver, the Service API, or both, under uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from graphworks.cli.common import echo_err, settings_or_exit

if TYPE_CHECKING:
    from graphworks_core.settings import Settings

# uvicorn factories per role; `all` dispatches by path (graphworks/serve_app.py).
APPS = {
    "webhooks": "webhooks.app:create_app",
    "api": "ops.app:create_app",
    "all": "graphworks.serve_app:create_app",
}


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--role",
    type=click.Choice(sorted(APPS)),
    default="all",
    show_default=True,
    help="webhooks: the receiver alone (internet-facing, no API routes); api: the Service API alone; all: both.",
)
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="uvicorn worker processes [WEBHOOK_WORKERS]")
def serve(host: str, port: int, role: str, workers: int | None) -> None:
    """Serve the webhook receiver (POST /webhooks/graph, /webhooks/graph/lifecycle) and/or the Service
    API (/api/jobs, /api/schedules; OpenAPI at /api/openapi.json). GET /api/queue/health answers in
    every role, without a token.

    Change notifications are checked (clientState, subscription, tenant, validation tokens); a
    delivery's valid items are stored as one `notification_batch` job before the 202; a worker runs it.
    API routes need `Authorization: Bearer` with ADMIN_TOKEN, SERVICE_TOKEN or VIEWER_TOKEN; with
    none of them set, they answer 401 to everyone.
    """
    import uvicorn

    settings = settings_or_exit()
    if not settings.redis_configured:
        raise click.ClickException(
            "REDIS_URL (or REDIS_SENTINELS) is not set: the receiver and the API keep jobs in Redis"
        )
    base = f"http://{host}:{port}"
    if role in ("webhooks", "all"):
        echo_err(f"graphworks serve: receiver at {base}/webhooks/graph (and /webhooks/graph/lifecycle)")
    if role in ("api", "all"):
        echo_err(f"graphworks serve: API at {base}/api (OpenAPI {base}/api/openapi.json); {_tokens_line(settings)}")
    uvicorn.run(
        APPS[role],
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


def _tokens_line(settings: Settings) -> str:
    """Which tokens are set (never their values)."""
    tokens = {"ADMIN_TOKEN": settings.admin_token, "SERVICE_TOKEN": settings.service_token,
              "VIEWER_TOKEN": settings.viewer_token}  # fmt: skip
    names = [name for name, token in tokens.items() if token is not None]
    if not names:
        return "no token set (ADMIN_TOKEN, SERVICE_TOKEN, VIEWER_TOKEN): API routes refuse every request (401)"
    return "tokens set: " + ", ".join(names)
