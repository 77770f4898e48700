"""The ``/_sim`` control API: drive graphsim's faults, records, token and data over HTTP.

Lets the demo and other processes do what tests do through `SimState`. These routes are
not Graph routes: they need no token and are never recorded.
"""

from __future__ import annotations

import dataclasses

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from graphsim.common import json_object, sim_state
from graphsim.errors import GraphError
from graphsim.faults import Fault

_FAULTS = TypeAdapter(Fault | list[Fault])


class TokenBody(BaseModel):
    """Body of ``PUT /_sim/token``: the only bearer token to accept, or null for any."""

    model_config = ConfigDict(extra="forbid")

    token: str | None


async def _raw_body(request: Request) -> bytes:
    raw = await request.body()
    if not raw.strip():
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    return raw


async def add_faults(request: Request) -> JSONResponse:
    """POST /_sim/faults: one Fault or a list of them."""
    try:
        parsed = _FAULTS.validate_json(await _raw_body(request))
    except ValidationError as exc:
        raise GraphError(400, "BadRequest", f"Invalid fault: {exc}") from exc
    faults = parsed if isinstance(parsed, list) else [parsed]
    state = sim_state(request)
    for fault in faults:
        state.add_fault(fault)
    return JSONResponse({"faults": [f.model_dump() for f in faults]}, status_code=201)


async def list_faults(request: Request) -> JSONResponse:
    """GET /_sim/faults: the active faults with what is left of their `times`."""
    return JSONResponse([f.model_dump() for f in sim_state(request).faults()])


async def clear_faults(request: Request) -> Response:
    """DELETE /_sim/faults"""
    sim_state(request).clear_faults()
    return Response(status_code=204)


async def list_requests(request: Request) -> JSONResponse:
    """GET /_sim/requests: recorded Graph requests, oldest first."""
    return JSONResponse([dataclasses.asdict(r) for r in sim_state(request).requests()])


async def clear_requests(request: Request) -> Response:
    """DELETE /_sim/requests"""
    sim_state(request).clear_requests()
    return Response(status_code=204)


async def reset(request: Request) -> Response:
    """POST /_sim/reset: faults, records, data and the expected token all cleared."""
    sim_state(request).reset()
    return Response(status_code=204)


async def set_token(request: Request) -> JSONResponse:
    """PUT /_sim/token with ``{"token": str | null}``."""
    try:
        body = TokenBody.model_validate_json(await _raw_body(request))
    except ValidationError as exc:
        raise GraphError(400, "BadRequest", f"Invalid token body: {exc}") from exc
    sim_state(request).expected_token = body.token
    return JSONResponse({"token": body.token})


async def list_sent_mail(request: Request) -> JSONResponse:
    """GET /_sim/sent-mail: messages accepted by sendMail, oldest first."""
    return JSONResponse([dataclasses.asdict(s) for s in sim_state(request).sent_mail()])


async def seed_mail(request: Request) -> JSONResponse:
    """POST /_sim/users/{user_id}/messages: store a mail message; answers its id."""
    message_id = sim_state(request).seed_mail_message(request.path_params["user_id"], await json_object(request))
    return JSONResponse({"id": message_id}, status_code=201)


async def seed_chat(request: Request) -> JSONResponse:
    """POST /_sim/chats/{chat_id}/messages: store a chat message; answers its id."""
    message_id = sim_state(request).seed_chat_message(request.path_params["chat_id"], await json_object(request))
    return JSONResponse({"id": message_id}, status_code=201)


def routes() -> list[BaseRoute]:
    """Control routes, relative to ``/_sim``."""
    return [
        Route("/faults", add_faults, methods=["POST"]),
        Route("/faults", list_faults, methods=["GET"]),
        Route("/faults", clear_faults, methods=["DELETE"]),
        Route("/requests", list_requests, methods=["GET"]),
        Route("/requests", clear_requests, methods=["DELETE"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/token", set_token, methods=["PUT"]),
        Route("/sent-mail", list_sent_mail, methods=["GET"]),
        Route("/users/{user_id}/messages", seed_mail, methods=["POST"]),
        Route("/chats/{chat_id}/messages", seed_chat, methods=["POST"]),
    ]
