"""``/_sim/delta/...``: the seeded dataset behind the delta routes, driven over HTTP.

Add, update and delete items between syncs so the next delta round returns just those changes,
and expire a collection's tokens so the next request with one answers 410 Gone. Collection keys
are as in `graphsim.delta_store` (``mail:{user}:{folder}``, ``drive:{drive}``, ...).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from graphsim.common import json_object, sim_state
from graphsim.delta_store import kind_of
from graphsim.errors import GraphError


def _key(request: Request) -> str:
    key = str(request.path_params["key"])
    try:
        kind_of(key)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", str(exc)) from exc
    return key


async def create_collection(request: Request) -> Response:
    """POST /_sim/delta/{key}: make an empty collection exist (its delta answers, not 404)."""
    sim_state(request).delta.create(_key(request))
    return Response(status_code=201)


async def upsert_items(request: Request) -> JSONResponse:
    """POST /_sim/delta/{key}/items with ``{"items": [...]}``: add or update items (new versions)."""
    key, body = _key(request), await json_object(request)
    items = body.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise GraphError(400, "BadRequest", 'Expected {"items": [object, ...]}.')
    store = sim_state(request).delta
    stored: list[dict[str, Any]] = [store.upsert(key, item) for item in items]
    return JSONResponse({"items": stored}, status_code=201)


async def list_items(request: Request) -> JSONResponse:
    """GET /_sim/delta/{key}/items: the live items."""
    return JSONResponse({"items": sim_state(request).delta.items(_key(request))})


async def delete_item(request: Request) -> Response:
    """DELETE /_sim/delta/{key}/items/{item_id}"""
    if not sim_state(request).delta.delete(_key(request), str(request.path_params["item_id"])):
        raise GraphError(404, "NotFound", "No such item.")
    return Response(status_code=204)


async def expire_tokens(request: Request) -> Response:
    """POST /_sim/delta/{key}/expire: every token issued so far answers 410 Gone."""
    sim_state(request).delta.expire(_key(request))
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    """Control routes, relative to ``/_sim``."""
    return [
        Route("/delta/{key}", create_collection, methods=["POST"]),
        Route("/delta/{key}/items", upsert_items, methods=["POST"]),
        Route("/delta/{key}/items", list_items, methods=["GET"]),
        Route("/delta/{key}/items/{item_id}", delete_item, methods=["DELETE"]),
        Route("/delta/{key}/expire", expire_tokens, methods=["POST"]),
    ]
