"""The subscription manager: create, renew, recreate, delete Graph subscriptions and keep the registry.

Graph: POST /subscriptions, PATCH /subscriptions/{id} (renew; renewing also reauthorizes),
DELETE /subscriptions/{id}.
https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions
https://learn.microsoft.com/en-us/graph/api/subscription-update
https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events
Each subscription gets its own random clientState; only its hash is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from graphworks_core.clock import Clock, utc
from graphworks_core.errors import GraphHTTPError, JobFailure
from worker.graph.client import GraphClient
from worker.graph.responses import reply_model
from worker.subscriptions.client_state import client_state_digest, new_client_state
from worker.subscriptions.crypto import KeyStore
from worker.subscriptions.lifetimes import max_expiration_minutes
from worker.subscriptions.registry import SubscriptionRecord, SubscriptionRegistry

log = logging.getLogger("graphworks.subscriptions")

# Ask for the documented maximum minus this, so a clock a little ahead of Graph's is not refused.
SKEW_ALLOWANCE_S = 30.0

Resync = Callable[[SubscriptionRecord], Awaitable[None]]


class GraphSubscription(BaseModel):
    """The fields of Graph's subscription we read back."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str
    expiration: datetime = Field(alias="expirationDateTime")


def graph_time(ts: float) -> str:
    return utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class RenewReport:
    renewed: list[str] = field(default_factory=list)
    recreated: dict[str, str] = field(default_factory=dict)  # old id -> new id
    failed: list[str] = field(default_factory=list)


class SubscriptionManager:
    def __init__(
        self,
        graph: GraphClient,
        registry: SubscriptionRegistry,
        clock: Clock,
        *,
        keys: KeyStore | None = None,
        tenant_id: str | None = None,
        renew_margin_s: float = 1800.0,
        resync: Resync | None = None,
    ) -> None:
        self.graph = graph
        self.registry = registry
        self.clock = clock
        self.keys = keys or KeyStore()
        self.tenant_id = tenant_id
        self.renew_margin_s = renew_margin_s
        self.resync = resync

    def _expiration(self, resource: str, minutes: int | None, *, rich: bool, lifecycle: bool) -> float:
        limit = max_expiration_minutes(resource, include_resource_data=rich, has_lifecycle_url=lifecycle)
        wanted = limit if minutes is None else min(minutes, limit)
        return self.clock.now() + wanted * 60 - (SKEW_ALLOWANCE_S if wanted == limit else 0)

    async def create(
        self,
        resource: str,
        change_type: str,
        notification_url: str,
        *,
        lifecycle_url: str | None = None,
        expiration_minutes: int | None = None,
        include_resource_data: bool = False,
        tenant_id: str | None = None,
    ) -> SubscriptionRecord:
        """Create a subscription (Graph runs the validation handshake against our URLs first)."""
        client_state = new_client_state()
        expires = self._expiration(
            resource, expiration_minutes, rich=include_resource_data, lifecycle=bool(lifecycle_url)
        )
        body: dict[str, Any] = {
            "changeType": change_type,
            "notificationUrl": notification_url,
            "resource": resource,
            "expirationDateTime": graph_time(expires),
            "clientState": client_state,
            "latestSupportedTlsVersion": "v1_2",
        }
        if lifecycle_url:
            body["lifecycleNotificationUrl"] = lifecycle_url
        cert_id = None
        if include_resource_data:
            key = self.keys.default()
            if key is None:
                raise ValueError("includeResourceData needs WEBHOOK_ENCRYPTION_KEYS (a private key and certificate)")
            cert_id = key.certificate_id
            body |= {
                "includeResourceData": True,
                "encryptionCertificate": key.certificate_base64(),
                "encryptionCertificateId": cert_id,
            }
        response = await self.graph.call("POST", self.graph.sdk.subscriptions, json_body=body)
        created = reply_model(GraphSubscription, response)
        now = utc(self.clock.now())
        record = SubscriptionRecord(
            id=created.id,
            resource=resource,
            change_type=change_type,
            notification_url=notification_url,
            lifecycle_url=lifecycle_url,
            expiration=created.expiration,
            client_state_sha256=client_state_digest(client_state),
            tenant_id=tenant_id or self.tenant_id,
            include_resource_data=include_resource_data,
            encryption_certificate_id=cert_id,
            created_at=now,
        )
        await self.registry.put(record)
        log.info("subscription created id=%s resource=%s expires=%s", record.id, resource, record.expiration)
        return record

    async def renew(self, subscription_id: str, *, recreate_on_failure: bool = True) -> SubscriptionRecord:
        """Extend to the resource's maximum; a subscription Graph no longer has is recreated."""
        record = await self.registry.get(subscription_id)
        if record is None:
            raise KeyError(f"no subscription {subscription_id} in the registry")
        expires = self._expiration(
            record.resource, None, rich=record.include_resource_data, lifecycle=bool(record.lifecycle_url)
        )
        builder = self.graph.sdk.subscriptions.by_subscription_id(subscription_id)
        try:
            response = await self.graph.call("PATCH", builder, json_body={"expirationDateTime": graph_time(expires)})
        except JobFailure as exc:
            if not recreate_on_failure or (isinstance(exc, GraphHTTPError) and exc.status in (401, 403)):
                raise
            log.warning("subscription id=%s did not renew (%s): recreating it", subscription_id, exc)
            return await self.recreate(record)
        renewed = reply_model(GraphSubscription, response)
        record = record.model_copy(update={"expiration": renewed.expiration, "renewed_at": utc(self.clock.now())})
        await self.registry.put(record)
        log.info("subscription renewed id=%s expires=%s", record.id, record.expiration)
        return record

    async def recreate(self, record: SubscriptionRecord, *, resync: bool = True) -> SubscriptionRecord:
        """A new subscription like `record` (new id, new clientState); the old one is deleted."""
        new = await self.create(
            record.resource,
            record.change_type,
            record.notification_url,
            lifecycle_url=record.lifecycle_url,
            include_resource_data=record.include_resource_data,
            tenant_id=record.tenant_id,
        )
        try:
            await self.delete(record.id)
        except JobFailure as exc:  # the new one works; a stale old one only costs duplicates, deduped later
            log.warning("old subscription id=%s not deleted at Graph: %s", record.id, exc)
            await self.registry.delete(record.id)
        log.info("subscription recreated old=%s new=%s", record.id, new.id)
        if resync and self.resync is not None:
            # Notifications between the old one lapsing and the new one starting are lost: catch up.
            await self.resync(new)
        return new

    async def delete(self, subscription_id: str) -> bool:
        """Delete at Graph (already gone is fine) and forget it; True if Graph still had it."""
        builder = self.graph.sdk.subscriptions.by_subscription_id(subscription_id)
        existed = True
        try:
            await self.graph.call("DELETE", builder)
        except GraphHTTPError as exc:
            if exc.status != 404:
                raise
            existed = False
        await self.registry.delete(subscription_id)
        return existed

    async def list(self) -> list[SubscriptionRecord]:
        return await self.registry.all()

    async def renew_due(self) -> RenewReport:
        """Renew everything expiring within the margin; recreate what cannot be renewed."""
        report = RenewReport()
        now = self.clock.now()
        for record in await self.registry.expiring_before(now + self.renew_margin_s):
            try:
                if record.expiration.timestamp() <= now:
                    # Graph deletes expired subscriptions: there is nothing to renew.
                    new = await self.recreate(record)
                else:
                    new = await self.renew(record.id)
            except (JobFailure, ValueError) as exc:
                report.failed.append(record.id)
                log.error("subscription id=%s could not be renewed or recreated: %s", record.id, exc)
                continue
            if new.id == record.id:
                report.renewed.append(record.id)
            else:
                report.recreated[record.id] = new.id
        return report
