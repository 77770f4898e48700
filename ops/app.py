"""The Service and Ops APIs as one FastAPI app (DESIGN.md, "HTTP surface"): job routes (ops/jobs.py), schedule
routes (ops/schedules.py), the queue, dead-letter, metrics and events routes, health, and OpenAPI at
/api/openapi.json (docs at /api/docs), generated from the same pydantic models the handlers take and
return; beside them the operator's page at /dashboard (ops/dashboard/) and its sign-in (ops/session.py).

Every request first passes ops/guard.py (token, body size, media type), so FastAPI only sees
requests it may answer. `create_app` is uvicorn's factory (`graphworks serve --role api`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp

from graphworks_core.clock import Clock
from graphworks_core.connections import redis_client
from graphworks_core.settings import Settings, load_settings
from ops.auth import FailureBrake, Tokens
from ops.dashboard.page import DashboardApp, WithDashboard
from ops.deadletters import deadletters_router
from ops.errors import Invalid, Message, install
from ops.events import events_router
from ops.guard import ApiGuard
from ops.jobs import jobs_router
from ops.metrics import metrics_router
from ops.queues import queues_router
from ops.schedules import schedules_router
from ops.session import SessionAuth, SessionEndpoint, Sessions
from ops.subscriptions import subscriptions_router
from worker.audit import AuditLog
from worker.client import GraphworksClient
from worker.config_file import load_file_config
from worker.schedules import ScheduleStore

HEALTH_PATH = "/api/queue/health"
SECURITY_SCHEME = "bearer"

DESCRIPTION = """\
Enqueue Microsoft Graph work (Teams messages, mail, uploads, syncs) from any language and follow it.

Every route but `GET /api/queue/health` and this description needs `Authorization: Bearer <token>`:
`ADMIN_TOKEN` reaches every route, `SERVICE_TOKEN` the `/api/jobs` and `/api/schedules` routes,
`VIEWER_TOKEN` GETs only. Missing or wrong: 401 (`WWW-Authenticate: Bearer`); a token whose role
does not reach the route: 403; more than 20 missing or wrong tokens a minute from one client: 429
with `Retry-After` on every route for a minute, whatever token it sends. Bodies are
JSON (`Content-Type: application/json`, else 415) of at most API_MAX_BODY_BYTES (else 413). A Redis
outage answers 503 with `Retry-After`.
"""

GUARD_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "missing or wrong token (WWW-Authenticate: Bearer)"},
    403: {"model": Message, "description": "the token's role does not reach this route"},
    422: {"model": Invalid, "description": "a payload, query or header that fails its model"},
    429: {"model": Message, "description": "too many failed token attempts from this client (Retry-After)"},
    503: {"model": Message, "description": "Redis is unreachable; try again (Retry-After)"},
}
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": Message, "description": "body over API_MAX_BODY_BYTES"},
    415: {"model": Message, "description": "body not application/json"},
}


def create_api(
    settings: Settings,
    *,
    redis: aioredis.Redis | None = None,
    client: GraphworksClient | None = None,
    clock: Clock | None = None,
) -> ASGIApp:
    """The API (guard + FastAPI). Without `redis`/`client`, one Redis client for REDIS_URL, closed at shutdown."""
    owned = redis is None and client is None
    if client is None:
        if redis is None:
            if not settings.redis_configured:
                raise ValueError("REDIS_URL (or REDIS_SENTINELS) is not set: the API reads and stores jobs there")
            # Rides out a short outage within a command; every request is bounded (ops/errors.py).
            redis = redis_client(settings, retries=-1)
        client = GraphworksClient(redis, settings, clock=clock)
    clock = clock or client.clock
    schedules = ScheduleStore(client.redis, client.queue, settings, clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            await client.redis.aclose()

    api = FastAPI(
        title="graphworks",
        version="1",
        description=DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    install(api, settings)
    api.include_router(jobs_router(client, settings), responses={**GUARD_RESPONSES, **BODY_RESPONSES})
    api.include_router(queues_router(client, settings), responses=GUARD_RESPONSES)  # health, stats, pause, clear
    api.include_router(events_router(client), responses=GUARD_RESPONSES)  # SSE of graphworks:events
    api.include_router(
        schedules_router(schedules, settings, AuditLog(client.redis)), responses={**GUARD_RESPONSES, **BODY_RESPONSES}
    )
    api.include_router(deadletters_router(client, settings, clock), responses={**GUARD_RESPONSES, **BODY_RESPONSES})
    alerts_config = load_file_config(settings.graphworks_config).alerts  # /metrics, /api/queue/metrics, alerts
    api.include_router(metrics_router(client.redis, alerts_config, clock), responses=GUARD_RESPONSES)
    api.include_router(subscriptions_router(client, settings, clock), responses=GUARD_RESPONSES)

    _document_security(api)
    tokens = Tokens.from_settings(settings)
    brake = FailureBrake(client.redis, failures_per_window=settings.api_auth_failures_per_min, clock=clock)
    guarded = ApiGuard(api, tokens=tokens, brake=brake, settings=settings)
    # The dashboard (its page, assets and sign-in) beside the API; its session cookie opens the API.
    sessions = Sessions(client.redis, tokens, settings)
    return WithDashboard(DashboardApp(SessionEndpoint(sessions, brake)), SessionAuth(guarded, sessions))


def _document_security(api: FastAPI) -> None:
    """OpenAPI names the bearer scheme and requires it on every operation but those that opt out."""

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is not None:
            return api.openapi_schema
        schema = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes)
        schema.setdefault("components", {})["securitySchemes"] = {
            SECURITY_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "ADMIN_TOKEN (every route), SERVICE_TOKEN (/api/jobs*, /api/schedules*), "
                "VIEWER_TOKEN (GETs)",
            }
        }
        schema["security"] = [{SECURITY_SCHEME: []}]
        api.openapi_schema = schema
        return schema

    api.openapi = openapi  # type: ignore[method-assign]


def create_app() -> ASGIApp:
    """uvicorn's factory (`ops.app:create_app`): settings from the environment."""
    return create_api(load_settings())
