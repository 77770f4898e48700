"""Reads an inbound fetch needs beyond a message GET: channel replies, and seeding channel messages.

Graph names a reply in a channel notification as
``teams('{t}')/channels('{c}')/messages('{m}')/replies('{r}')``;
https://learn.microsoft.com/en-us/graph/api/chatmessage-get
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from graphsim import resources
from graphsim.common import json_object, sim_state
from graphsim.errors import GraphError


async def get_channel_reply(request: Request) -> JSONResponse:
    """GET /teams/{team_id}/channels/{channel_id}/messages/{message_id}/replies/{reply_id}"""
    p = request.path_params
    found = sim_state(request).channel_message(p["team_id"], p["channel_id"], p["reply_id"])
    if found is None or found.get("replyToId") != p["message_id"]:
        raise GraphError(404, "NotFound", "Message not found.")
    return JSONResponse(found)


async def seed_channel_message(request: Request) -> JSONResponse:
    """POST /_sim/teams/{team_id}/channels/{channel_id}/messages: store a channel message; its id."""
    state = sim_state(request)
    team_id, channel_id = request.path_params["team_id"], request.path_params["channel_id"]
    given = await json_object(request)
    message_id = str(given.get("id") or state.next_message_id())
    message = resources.chat_message(message_id, given, team_id=team_id, channel_id=channel_id)
    state.put_channel_message(team_id, channel_id, message)
    return JSONResponse({"id": message_id}, status_code=201)


def routes() -> list[BaseRoute]:
    """Graph routes, relative to ``/v1.0``."""
    return [
        Route(
            "/teams/{team_id}/channels/{channel_id}/messages/{message_id}/replies/{reply_id}",
            get_channel_reply,
            methods=["GET"],
        )
    ]


def control_routes() -> list[BaseRoute]:
    """Control routes, relative to ``/_sim``."""
    return [Route("/teams/{team_id}/channels/{channel_id}/messages", seed_channel_message, methods=["POST"])]
