"""Helpers shared by graphsim's route modules: the state behind a request and JSON bodies."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from graphsim.errors import GraphError
from graphsim.state import SimState


def sim_state(request: Request) -> SimState:
    """The `SimState` of the app serving `request`."""
    state = request.app.state.sim
    if not isinstance(state, SimState):  # pragma: no cover - wiring error
        raise TypeError("graphsim app has no SimState")
    return state


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a Graph 400 BadRequest."""
    raw = await request.body()
    if not raw.strip():
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", f"Invalid JSON in request body: {exc}.") from exc
    if not isinstance(parsed, dict):
        raise GraphError(400, "BadRequest", "Invalid request body: a JSON object was expected.")
    return parsed
