"""`GET /api/queue/subscriptions`: the Graph subscriptions the suite keeps, soonest expiry first.

What an operator checks when notifications stop: is the subscription still there, and when does it
expire (the renewal cron renews ahead of that; see worker/subscriptions/renewal.py). The clientState
is never stored, so never shown; its digest is left out too.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from graphworks_core.clock import Clock
from graphworks_core.settings import Settings
from ops.errors import redis_deadline
from worker.client import GraphworksClient
from worker.subscriptions.registry import SubscriptionRecord, SubscriptionRegistry


class SubscriptionView(BaseModel):
    id: str
    resource: str
    change_type: str
    expiration: datetime
    expires_in_s: float = Field(description="seconds until Graph drops it unless renewed (negative: expired)")
    include_resource_data: bool
    tenant_id: str | None
    created_at: datetime | None
    renewed_at: datetime | None


def _view(r: SubscriptionRecord, now: float) -> SubscriptionView:
    return SubscriptionView(
        id=r.id, resource=r.resource, change_type=r.change_type, expiration=r.expiration,
        expires_in_s=round(r.expiration.timestamp() - now, 1), include_resource_data=r.include_resource_data,
        tenant_id=r.tenant_id, created_at=r.created_at, renewed_at=r.renewed_at,
    )  # fmt: skip


def subscriptions_router(client: GraphworksClient, settings: Settings, clock: Clock) -> APIRouter:
    router = APIRouter(prefix="/api/queue", tags=["ops"])
    registry = SubscriptionRegistry(client.redis)

    @router.get(
        "/subscriptions",
        response_model=list[SubscriptionView],
        operation_id="subscriptions",
        summary="Graph subscriptions, soonest expiry first",
    )
    async def get_subscriptions() -> list[SubscriptionView]:
        async with redis_deadline(settings):
            records = await registry.all()
        now = clock.now()
        return [_view(r, now) for r in records]

    return router
