"""The graph layer: the outermost ASGI wrapper that makes every Graph route behave like Graph.

For each request under ``/v1.0`` it assigns the request ids, applies the first matching
fault (status, slow or TCP reset), checks the bearer token, records the request and stamps
``request-id``, ``client-request-id`` and ``Date`` on the answer. Faults are consulted
before the token so an injected fault fires no matter which token the caller sends.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
import uuid
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphsim.errors import CLIENT_REQUEST_ID_KEY, LOSE_KEY, REQUEST_ID_KEY, error_response
from graphsim.faults import Fault
from graphsim.state import RecordedRequest, SimState

GRAPH_PREFIX = "/v1.0"
_STAMPED = {b"request-id", b"client-request-id", b"date"}
_RESET_STATUS = 0  # recorded status of a request whose connection was reset
# Upload-session and download URLs are pre-authenticated (the URL is the credential): no bearer token.
PRE_AUTHENTICATED_PREFIXES = ("/_uploads/", "/_downloads/")


def graph_path(path: str) -> str | None:
    """The path without ``/v1.0`` for a Graph route, or None for anything else."""
    if path == GRAPH_PREFIX:
        return "/"
    if path.startswith(GRAPH_PREFIX + "/"):
        return path[len(GRAPH_PREFIX) :]
    return None


def auth_failure(authorization: str | None, expected_token: str | None) -> str | None:
    """Why the Authorization header is refused, or None when it is accepted."""
    if not authorization:
        return "Access token is empty."
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return "Access token is empty."
    if expected_token is not None and token != expected_token:
        return "Access token validation failure. Invalid audience."
    return None


def _headers(scope: Scope) -> dict[str, str]:
    merged: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


async def reset_connection(send: Send, receive: Receive) -> None:
    """Drop the TCP connection with an RST and no response.

    Needs uvicorn, whose ``send`` is a bound method of the protocol cycle holding the
    transport; SO_LINGER (on, 0 s) turns the close into an RST instead of a FIN.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError(
            "graphsim reset faults need the real server (graphsim.server over TCP); "
            "this ASGI server exposes no transport to abort"
        )
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Wait for the server to notice the lost connection, so it does not try to answer.
    try:
        async with asyncio.timeout(1.0):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        pass


class GraphLayer:
    """ASGI wrapper applying ids, faults, auth and recording around graphsim's app."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        request_id = str(uuid.uuid4())
        client_request_id = headers.get("client-request-id") or str(uuid.uuid4())
        scope[REQUEST_ID_KEY] = request_id
        scope[CLIENT_REQUEST_ID_KEY] = client_request_id
        path = graph_path(scope["path"])
        if path is None:  # control API and unknown roots: stamped, not recorded
            await self.app(scope, receive, self._stamping(send, scope, None))
            return

        body = await _read_body(receive)
        recorded: dict[str, Any] = {
            "method": scope["method"],
            "path": path,
            "query": dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), True)),
            "headers": headers,
            "body": _parse_json(body),
            "body_size": len(body),
            "at": time.time(),
            "request_id": request_id,
            "client_request_id": client_request_id,
        }
        stamping = self._stamping(send, scope, recorded)

        fault = self.state.take_fault(scope["method"], path, headers)
        if fault is not None:
            if fault.delay_s > 0:
                await asyncio.sleep(fault.delay_s)
            if fault.kind == "reset":
                await self._reset(send, receive, recorded)
                return
            if fault.kind == "status":
                await self._fault_response(fault, path, scope, receive, stamping)
                return
            if fault.kind == "reply":
                await JSONResponse(fault.body, status_code=fault.status)(scope, receive, stamping)
                return
            if fault.kind == "lose" and fault.lose is not None:
                scope[LOSE_KEY] = fault.lose  # the upload route forgets these bytes (routes_uploads.py)

        retry_after = self.state.limits.check(scope["method"], path)
        if retry_after is not None:  # throttled, as Graph does: 429 with Retry-After (graphsim/limits.py)
            extra = {"Retry-After": f"{retry_after:.3f}"}
            response = error_response(429, "TooManyRequests", "Too many requests", scope, extra)
            await response(scope, receive, stamping)
            return

        refused = auth_failure(headers.get("authorization"), self.state.expected_token)
        if refused is not None and not path.startswith(PRE_AUTHENTICATED_PREFIXES):
            response = error_response(401, "InvalidAuthenticationToken", refused, scope)
            await response(scope, receive, stamping)
            return

        await self.app(scope, _replay(body, receive), stamping)

    async def _reset(self, send: Send, receive: Receive, recorded: dict[str, Any]) -> None:
        if getattr(getattr(send, "__self__", None), "transport", None) is not None:
            self.state.record(RecordedRequest(status=_RESET_STATUS, **recorded))
        await reset_connection(send, receive)

    @staticmethod
    async def _fault_response(fault: Fault, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        response = error_response(fault.status, fault.code_for(path), fault.message_for(), scope, extra)
        await response(scope, receive, send)

    def _stamping(self, send: Send, scope: Scope, recorded: dict[str, Any] | None) -> Send:
        """`send` that stamps the id and Date headers and records before the last byte leaves."""
        status = 0
        ids = [
            (b"request-id", str(scope[REQUEST_ID_KEY]).encode("latin-1")),
            (b"client-request-id", str(scope[CLIENT_REQUEST_ID_KEY]).encode("latin-1")),
        ]

        async def stamped(message: Message) -> None:
            nonlocal status, recorded
            if message["type"] == "http.response.start":
                status = int(message["status"])
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _STAMPED]
                date = (b"date", formatdate(usegmt=True).encode("latin-1"))
                message = {**message, "headers": [*kept, *ids, date]}
                if recorded is not None:
                    # Record before any byte of the answer leaves, so a client that has its
                    # response always finds the request in the log (a 202/204 with
                    # Content-Length: 0 is complete for the client once its headers arrive).
                    self.state.record(RecordedRequest(status=status, **recorded))
                    recorded = None
            await send(message)

        return stamped


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields the already-read body once, then defers to the server."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
