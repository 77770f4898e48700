"""Fault injection for graphsim: what to break, for which requests, and how many times.

A `Fault` is plain data (it also arrives as JSON through `POST /_sim/faults`); `SimState`
keeps the active ones in insertion order and hands out the first that matches a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["status", "reset", "slow", "reply", "lose"]

# Graph's error codes for the statuses tests inject most; anything else falls back below.
_DEFAULT_CODES: dict[int, str] = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "RequestEntityTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}

_DEFAULT_MESSAGES: dict[int, str] = {
    400: "Invalid request.",
    401: "Access token validation failure. Invalid audience.",
    403: "Forbidden",
    404: "The specified object was not found in the store.",
    429: "Too many requests",
    500: "An internal server error occurred.",
    502: "Bad gateway.",
    503: "The service is temporarily unavailable. Please retry later.",
    504: "The gateway timed out.",
}


def default_graph_code(status: int, path: str = "") -> str:
    """The Graph error code a real service would send for `status` on `path`."""
    if status == 404 and "/messages" in path and path.startswith(("/users/", "/me/")):
        return "ErrorItemNotFound"  # Outlook's own code, not the generic one
    if status in _DEFAULT_CODES:
        return _DEFAULT_CODES[status]
    return "BadRequest" if 400 <= status < 500 else "UnknownError"


def default_message(status: int) -> str:
    """A Graph-like human message for `status`."""
    return _DEFAULT_MESSAGES.get(status, f"graphsim injected status {status}.")


class Fault(BaseModel):
    """One injected failure.

    `path` is an fnmatch glob over the request path without the `/v1.0` prefix
    (e.g. ``/chats/*/messages``); `method` is ``*`` or an HTTP method; `headers` maps request
    header names (any case) to fnmatch globs that must all match too, e.g. ``{"content-range":
    "bytes *-1049/1050"}`` for the fragment holding an upload's last byte. `kind` is
    ``status`` (answer `status` with a Graph error body, after `delay_s`), ``reset``
    (abort the TCP connection with an RST, no response), ``slow`` (wait `delay_s`,
    then answer normally), ``reply`` (answer `status`, which may be 2xx, with `body` as it is:
    a reply that does not fit what the route documents) or ``lose`` (an upload session forgets
    the bytes `lose` = [first, last] it had received, then handles the request as usual, so
    its answer lists them in nextExpectedRanges). `times` counts the matching requests it
    still applies to; None means forever.
    """

    model_config = ConfigDict(extra="forbid")

    method: str = "*"
    path: str
    kind: FaultKind = "status"
    status: int = Field(default=503, ge=100, le=599)
    retry_after: str | None = None
    graph_code: str | None = None
    message: str | None = None
    delay_s: float = Field(default=0.0, ge=0.0)
    times: int | None = Field(default=1, ge=1)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None  # kind "reply": the JSON body to answer with
    lose: tuple[int, int] | None = None  # kind "lose": the byte range the upload session forgets

    def matches(self, method: str, path: str, headers: Mapping[str, str] | None = None) -> bool:
        """Whether this fault applies to a request (ignoring how many times are left); `headers`
        has lower-case names."""
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        if not fnmatchcase(path, self.path):
            return False
        given = headers or {}
        return all(fnmatchcase(given.get(name.lower(), ""), glob) for name, glob in self.headers.items())

    def code_for(self, path: str) -> str:
        """The Graph error code to send: the explicit one, else the default for the status."""
        return self.graph_code or default_graph_code(self.status, path)

    def message_for(self) -> str:
        """The error message to send: the explicit one, else a Graph-like default."""
        return self.message or default_message(self.status)
