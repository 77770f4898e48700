"""Teams routes: send and read chat and channel messages (chatMessage resource)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from graphsim import resources
from graphsim.common import json_object, sim_state
from graphsim.errors import GraphError

_CONTENT_TYPES = {"text", "html"}
_IMPORTANCE = {"normal", "high", "urgent"}


def _message_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """The chatMessage fields a POST may set, validated as Graph does (or a 400)."""
    body = payload.get("body")
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Missing required property 'body' of type 'itemBody'.")
    content = body.get("content")
    if not isinstance(content, str) or not content.strip():
        raise GraphError(400, "BadRequest", "Message body content cannot be empty.")
    content_type = body.get("contentType", "text")
    if not isinstance(content_type, str) or content_type.lower() not in _CONTENT_TYPES:
        raise GraphError(400, "BadRequest", f"Invalid body contentType '{content_type}'.")
    importance = payload.get("importance", "normal")
    if not isinstance(importance, str) or importance.lower() not in _IMPORTANCE:
        raise GraphError(400, "BadRequest", f"Invalid importance '{importance}'.")
    fields: dict[str, Any] = {
        "body": {"contentType": content_type.lower(), "content": content},
        "importance": importance.lower(),
    }
    for optional in ("subject", "summary", "attachments", "mentions"):
        if optional in payload:
            fields[optional] = payload[optional]
    return fields


async def post_chat_message(request: Request) -> JSONResponse:
    """POST /chats/{chat_id}/messages"""
    state = sim_state(request)
    chat_id = request.path_params["chat_id"]
    fields = _message_fields(await json_object(request))
    message = resources.chat_message(state.next_message_id(), fields, chat_id=chat_id)
    state.put_chat_message(chat_id, message)
    return JSONResponse(message, status_code=201)


async def get_chat_message(request: Request) -> JSONResponse:
    """GET /chats/{chat_id}/messages/{message_id}"""
    found = sim_state(request).chat_message(request.path_params["chat_id"], request.path_params["message_id"])
    if found is None:
        raise GraphError(404, "NotFound", "Message not found.")
    return JSONResponse(found)


async def post_channel_message(request: Request) -> JSONResponse:
    """POST /teams/{team_id}/channels/{channel_id}/messages"""
    state = sim_state(request)
    team_id, channel_id = request.path_params["team_id"], request.path_params["channel_id"]
    fields = _message_fields(await json_object(request))
    message = resources.chat_message(state.next_message_id(), fields, team_id=team_id, channel_id=channel_id)
    state.put_channel_message(team_id, channel_id, message)
    return JSONResponse(message, status_code=201)


async def get_channel_message(request: Request) -> JSONResponse:
    """GET /teams/{team_id}/channels/{channel_id}/messages/{message_id}"""
    params = request.path_params
    found = sim_state(request).channel_message(params["team_id"], params["channel_id"], params["message_id"])
    if found is None:
        raise GraphError(404, "NotFound", "Message not found.")
    return JSONResponse(found)


def routes() -> list[BaseRoute]:
    """Teams routes, relative to ``/v1.0``."""
    return [
        Route("/chats/{chat_id}/messages", post_chat_message, methods=["POST"]),
        Route("/chats/{chat_id}/messages/{message_id}", get_chat_message, methods=["GET"]),
        Route("/teams/{team_id}/channels/{channel_id}/messages", post_channel_message, methods=["POST"]),
        Route(
            "/teams/{team_id}/channels/{channel_id}/messages/{message_id}",
            get_channel_message,
            methods=["GET"],
        ),
    ]
