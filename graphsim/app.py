"""The graphsim ASGI app: Graph routes under ``/v1.0``, the control API under ``/_sim``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp

from graphsim import (
    control,
    control_delta,
    limits_control,
    routes_contacts,
    routes_delta,
    routes_drive,
    routes_identity,
    routes_inbound,
    routes_mail,
    routes_mail_drafts,
    routes_subscriptions,
    routes_teams,
    routes_uploads,
)
from graphsim.errors import GraphError, error_response, graph_error_response
from graphsim.layer import GraphLayer, graph_path
from graphsim.state import SimState


class GraphSimApp(Starlette):
    """Starlette with the graph layer outside everything, so it sees the server's own `send`.

    Reset faults need uvicorn's `send` (a bound method holding the transport); Starlette's
    error middleware would otherwise wrap it.
    """

    def __init__(self, state: SimState) -> None:
        super().__init__(
            routes=[
                Mount(
                    "/v1.0",
                    routes=[
                        *routes_delta.routes(),
                        *routes_contacts.routes(),
                        *routes_teams.routes(),
                        *routes_mail.routes(),
                        *routes_inbound.routes(),
                        *routes_drive.routes(),
                        *routes_uploads.routes(),
                        *routes_mail_drafts.routes(),
                        *routes_subscriptions.routes(),
                    ],
                ),  # delta first: beats /messages/{id}
                Mount(
                    "/_sim",
                    routes=[
                        *control.routes(),
                        *control_delta.routes(),
                        *routes_inbound.control_routes(),
                        *routes_subscriptions.control_routes(),
                        *limits_control.routes(),
                    ],
                ),
                *routes_identity.routes(),  # the fake token endpoint, at the root as on login.microsoftonline.com
            ],
            exception_handlers={
                GraphError: _graph_error,
                HTTPException: _http_error,
                Exception: _server_error,
            },
        )
        self.state.sim = state
        self.sim_state = state

    def build_middleware_stack(self) -> ASGIApp:
        return GraphLayer(super().build_middleware_stack(), self.sim_state)


async def _graph_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GraphError)
    return graph_error_response(exc, request.scope)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = graph_path(request.url.path)
    if exc.status_code == 404 and path is not None:
        # Graph answers an unknown segment with 400, naming the segment.
        segment = path.rstrip("/").rsplit("/", 1)[-1]
        return error_response(400, "BadRequest", f"Resource not found for the segment '{segment}'.", request.scope)
    if exc.status_code == 405:
        message = f"The HTTP method '{request.method}' is not supported for this resource."
        return error_response(405, "MethodNotAllowed", message, request.scope, exc.headers)
    code = "NotFound" if exc.status_code == 404 else "BadRequest"
    return error_response(exc.status_code, code, str(exc.detail), request.scope, exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    return error_response(500, "InternalServerError", f"graphsim failed: {exc!r}", request.scope)


def create_app(state: SimState | None = None) -> GraphSimApp:
    """A graphsim app over `state` (a fresh `SimState` if None); the state is `app.sim_state`."""
    return GraphSimApp(state if state is not None else SimState())
