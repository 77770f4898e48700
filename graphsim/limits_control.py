"""The ``/_sim/limits`` control routes: set, read and clear graphsim's throttling limits."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from graphsim.common import sim_state
from graphsim.errors import GraphError
from graphsim.limits import SIM_LIMITS


async def put_limits(request: Request) -> JSONResponse:
    """PUT /_sim/limits: a list of SimLimit (replaces any; `[]` turns enforcement off)."""
    try:
        limits = SIM_LIMITS.validate_json(await request.body())
    except ValidationError as exc:
        raise GraphError(400, "BadRequest", f"Invalid limits: {exc}") from exc
    sim_state(request).limits.set(limits)
    return JSONResponse([limit.model_dump() for limit in limits])


async def get_limits(request: Request) -> JSONResponse:
    """GET /_sim/limits: the limits and how many requests each refused."""
    enforcer = sim_state(request).limits
    return JSONResponse({"limits": [lim.model_dump() for lim in enforcer.limits()], "refused": enforcer.refused()})


async def delete_limits(request: Request) -> Response:
    """DELETE /_sim/limits"""
    sim_state(request).limits.reset()
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    """Control routes, relative to ``/_sim``."""
    return [
        Route("/limits", put_limits, methods=["PUT"]),
        Route("/limits", get_limits, methods=["GET"]),
        Route("/limits", delete_limits, methods=["DELETE"]),
    ]
