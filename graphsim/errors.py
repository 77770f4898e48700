"""Graph-shaped error responses: ``{"error": {"code", "message", "innerError": {...}}}``.

Route handlers raise `GraphError`; the app turns it into the body Microsoft Graph sends,
carrying the same request ids as the response headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse

# Keys under which the graph layer leaves this request's ids in the ASGI scope.
REQUEST_ID_KEY = "graphsim.request_id"
CLIENT_REQUEST_ID_KEY = "graphsim.client_request_id"
# Where the graph layer leaves a `lose` fault's byte range for the upload route.
LOSE_KEY = "graphsim.lose"


class GraphError(Exception):
    """An error a Graph route answers with; becomes a Graph error body."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def utc_now_iso() -> str:
    """Now in UTC, ISO 8601 with a trailing Z and seconds precision, as Graph writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def error_body(code: str, message: str, request_id: str, client_request_id: str) -> dict[str, Any]:
    """The JSON body of a Graph error."""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": utc_now_iso(),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }


def error_response(
    status: int,
    code: str,
    message: str,
    scope: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A Graph error response using the request ids the graph layer put in `scope`."""
    body = error_body(code, message, str(scope.get(REQUEST_ID_KEY, "")), str(scope.get(CLIENT_REQUEST_ID_KEY, "")))
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def graph_error_response(error: GraphError, scope: Mapping[str, Any]) -> JSONResponse:
    """The response for a raised `GraphError`."""
    return error_response(error.status, error.code, error.message, scope, error.headers)
