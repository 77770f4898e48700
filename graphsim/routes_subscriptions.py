"""``/subscriptions`` as Graph serves it, and ``/_sim/subscriptions/*`` to fire notifications.

Create runs Graph's validation handshake: POST `notificationUrl?validationToken=...` (and the
lifecycle URL), and the subscription is refused unless each answers 200 with exactly the token
within 10 s. https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks
Expired subscriptions are gone (GET/PATCH/DELETE answer 404), as Graph deletes them.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from graphsim.common import json_object, sim_state
from graphsim.errors import GraphError
from graphsim.lifetimes import is_teams, max_minutes
from graphsim.subscriptions import SubscriptionStore, encrypt_content

HANDSHAKE_TIMEOUT_S = 10.0  # Graph waits 10 s for the validation answer
DELIVERY_TIMEOUT_S = 3.0  # and 3 s for a notification
_HIDDEN = ("_expires_at", "clientState", "encryptionCertificate")


def _store(request: Request) -> SubscriptionStore:
    store: SubscriptionStore = sim_state(request).subscriptions
    return store


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> float:
    if not isinstance(value, str):
        raise GraphError(400, "InvalidRequest", "expirationDateTime is required.")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise GraphError(400, "InvalidRequest", f"Invalid expirationDateTime '{value}'.") from exc


def _public(sub: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in sub.items() if k not in _HIDDEN}
    out["expirationDateTime"] = _iso(sub["_expires_at"])
    return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity", **out}


async def _handshake(url: str) -> None:
    token = "Validation: Testing client application reachability for subscription Request-Id: " + secrets.token_hex(8)
    try:
        async with httpx.AsyncClient(timeout=HANDSHAKE_TIMEOUT_S) as client:
            answer = await client.post(url, params={"validationToken": token}, headers={"Content-Type": "text/plain"})
    except httpx.HTTPError as exc:
        raise GraphError(
            400, "InvalidRequest", f"Subscription validation request failed. Notification endpoint unreachable: {exc!r}"
        ) from exc
    if answer.status_code != 200:
        raise GraphError(
            400, "InvalidRequest",
            "Subscription validation request failed. "
            "Notification endpoint must respond with 200 OK to validation request.",
        )  # fmt: skip
    if answer.text != token:
        raise GraphError(
            400, "InvalidRequest",
            "Subscription validation request failed. Response must exactly match validationToken query parameter.",
        )  # fmt: skip


def _check_create(body: dict[str, Any], store: SubscriptionStore) -> float:
    for name in ("changeType", "notificationUrl", "resource"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise GraphError(400, "InvalidRequest", f"{name} is a required property.")
    if len(str(body.get("clientState") or "")) > 128:
        raise GraphError(400, "InvalidRequest", "clientState must be at most 128 characters.")
    rich = bool(body.get("includeResourceData"))
    if rich and not (body.get("encryptionCertificate") and body.get("encryptionCertificateId")):
        raise GraphError(
            400,
            "InvalidRequest",
            "encryptionCertificate and encryptionCertificateId are required with includeResourceData.",
        )
    expires = _parse_time(body.get("expirationDateTime"))
    lifecycle = bool(body.get("lifecycleNotificationUrl"))
    if is_teams(body["resource"]) and not lifecycle and expires - store.now() > 3600 + 1:
        raise GraphError(
            400, "InvalidRequest",
            "lifecycleNotificationUrl is a required property for subscription creation on this resource when the "
            "expirationDateTime value is set to greater than 1 hour.",
        )  # fmt: skip
    _check_expiry(body["resource"], expires, store, rich=rich, lifecycle=lifecycle)
    return expires


def _check_expiry(resource: str, expires: float, store: SubscriptionStore, *, rich: bool, lifecycle: bool) -> None:
    limit = max_minutes(resource, rich=rich, lifecycle=lifecycle)
    if expires <= store.now():
        raise GraphError(400, "InvalidRequest", "Subscription expiration must be in the future.")
    if expires > store.now() + limit * 60 + 1:
        raise GraphError(
            400, "ExtensionError",
            f"Operation: Create; Exception: [Status Code: BadRequest; Reason: Subscription expiration can only be "
            f"{limit} minutes in the future.]",
        )  # fmt: skip


async def create(request: Request) -> JSONResponse:
    """POST /subscriptions"""
    body = await json_object(request)
    store = _store(request)
    expires = _check_create(body, store)
    await _handshake(body["notificationUrl"])
    if body.get("lifecycleNotificationUrl"):
        await _handshake(body["lifecycleNotificationUrl"])
    known = (
        "changeType", "notificationUrl", "lifecycleNotificationUrl", "resource", "clientState", "includeResourceData",
        "encryptionCertificate", "encryptionCertificateId", "latestSupportedTlsVersion",
    )  # fmt: skip
    sub = store.add({k: body[k] for k in known if k in body} | {"_expires_at": expires, "applicationId": store.app_id})
    return JSONResponse(_public(sub), status_code=201)


def _live(request: Request) -> dict[str, Any]:
    sub_id = request.path_params["sub_id"]
    sub = _store(request).get(sub_id)
    if sub is None:
        raise GraphError(404, "ResourceNotFound", f"The object was not found. Subscription '{sub_id}' does not exist.")
    return sub


async def get_one(request: Request) -> JSONResponse:
    """GET /subscriptions/{id}"""
    return JSONResponse(_public(_live(request)))


async def list_all(request: Request) -> JSONResponse:
    """GET /subscriptions"""
    return JSONResponse({"value": [_public(s) for s in _store(request).all()]})


async def renew(request: Request) -> JSONResponse:
    """PATCH /subscriptions/{id}: a new expirationDateTime (and/or notificationUrl)."""
    sub = _live(request)
    body = await json_object(request)
    store = _store(request)
    expires = _parse_time(body.get("expirationDateTime"))
    _check_expiry(
        sub["resource"], expires, store,
        rich=bool(sub.get("includeResourceData")), lifecycle=bool(sub.get("lifecycleNotificationUrl")),
    )  # fmt: skip
    updated = store.update(sub["id"], _expires_at=expires)
    assert updated is not None
    return JSONResponse(_public(updated))


async def delete(request: Request) -> Response:
    """DELETE /subscriptions/{id}"""
    sub = _live(request)
    _store(request).remove(sub["id"])
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    return [
        Route("/subscriptions", create, methods=["POST"]),
        Route("/subscriptions", list_all, methods=["GET"]),
        Route("/subscriptions/{sub_id}", get_one, methods=["GET"]),
        Route("/subscriptions/{sub_id}", renew, methods=["PATCH"]),
        Route("/subscriptions/{sub_id}", delete, methods=["DELETE"]),
    ]


# -- control: fire notifications at the receiver ----------------------------------------------


def _item(
    sub: dict[str, Any], store: SubscriptionStore, spec: dict[str, Any], override: dict[str, Any]
) -> dict[str, Any]:
    resource = spec.get("resource") or sub["resource"]
    data = spec.get("resourceData") or {"id": resource.rsplit("/", 1)[-1].strip("()'")}
    item: dict[str, Any] = {
        "id": secrets.token_hex(8),
        "subscriptionId": sub["id"],
        "subscriptionExpirationDateTime": _iso(sub["_expires_at"]),
        "clientState": sub.get("clientState"),
        "changeType": spec.get("changeType", "created"),
        "resource": resource,
        "tenantId": store.tenant_id,
        "resourceData": data,
    }
    if sub.get("includeResourceData"):
        content = spec.get("content") or {"id": data.get("id")}
        item["encryptedContent"] = encrypt_content(
            content, sub["encryptionCertificate"], sub["encryptionCertificateId"]
        )
        if spec.get("tamper") == "dataSignature":
            sig = item["encryptedContent"]["dataSignature"]
            item["encryptedContent"]["dataSignature"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    for key, value in override.items():
        if value is None:
            item.pop(key, None)
        else:
            item[key] = value
    return item


async def _post(url: str, body: dict[str, Any]) -> int:
    async with httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_S) as client:
        answer = await client.post(url, json=body)
    return answer.status_code


async def notify(request: Request) -> JSONResponse:
    """POST /_sim/subscriptions/{id}/notify: deliver change notifications to the subscription's URL.

    Body (all optional): changeType, resource, resourceData, content (rich data), count,
    items (a list of per-item field overrides; null removes a field), tamper ("dataSignature"),
    tokenExpired, tokenAudience. Answers the receiver's status.
    """
    store = _store(request)
    sub = store.get(request.path_params["sub_id"], include_expired=True)
    if sub is None:
        raise GraphError(404, "ResourceNotFound", "no such subscription")
    spec = await json_object(request) if (await request.body()).strip() else {}
    overrides = spec.get("items") or [{}] * int(spec.get("count", 1))
    body: dict[str, Any] = {"value": [_item(sub, store, spec, o) for o in overrides]}
    if sub.get("includeResourceData"):
        body["validationTokens"] = [
            store.validation_token(expired=bool(spec.get("tokenExpired")), audience=spec.get("tokenAudience"))
        ]
    status = await _post(sub["notificationUrl"], body)
    return JSONResponse({"status": status, "sent": len(body["value"])})


async def lifecycle(request: Request) -> JSONResponse:
    """POST /_sim/subscriptions/{id}/lifecycle with {"event": reauthorizationRequired|subscriptionRemoved|missed}."""
    store = _store(request)
    sub = store.get(request.path_params["sub_id"], include_expired=True)
    if sub is None:
        raise GraphError(404, "ResourceNotFound", "no such subscription")
    spec = await json_object(request)
    event = spec.get("event")
    if event not in ("reauthorizationRequired", "subscriptionRemoved", "missed"):
        raise GraphError(400, "BadRequest", "event must be reauthorizationRequired, subscriptionRemoved or missed")
    if event == "subscriptionRemoved":
        store.remove(sub["id"])  # Graph has removed it; the notification says so
    item = {
        "subscriptionId": sub["id"],
        "subscriptionExpirationDateTime": _iso(sub["_expires_at"]),
        "tenantId": store.tenant_id,
        "clientState": sub.get("clientState"),
        "lifecycleEvent": event,
    }
    url = sub.get("lifecycleNotificationUrl") or sub["notificationUrl"]
    return JSONResponse({"status": await _post(url, {"value": [item]})})


async def expire(request: Request) -> Response:
    """POST /_sim/subscriptions/{id}/expire: make it lapse now."""
    store = _store(request)
    if store.update(request.path_params["sub_id"], _expires_at=store.now() - 1) is None:
        raise GraphError(404, "ResourceNotFound", "no such subscription")
    return Response(status_code=204)


async def jwks(request: Request) -> JSONResponse:
    """GET /_sim/jwks: the keys validation tokens are signed with."""
    return JSONResponse(_store(request).jwks())


async def sim_list(request: Request) -> JSONResponse:
    """GET /_sim/subscriptions: every subscription, expired included (clientState hidden)."""
    store = _store(request)
    return JSONResponse([_public(s) for s in (store.get(i, include_expired=True) for i in store.ids()) if s])


def control_routes() -> list[BaseRoute]:
    return [
        Route("/jwks", jwks, methods=["GET"]),
        Route("/subscriptions", sim_list, methods=["GET"]),
        Route("/subscriptions/{sub_id}/notify", notify, methods=["POST"]),
        Route("/subscriptions/{sub_id}/lifecycle", lifecycle, methods=["POST"]),
        Route("/subscriptions/{sub_id}/expire", expire, methods=["POST"]),
    ]
