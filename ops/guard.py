"""What every API request passes before FastAPI sees it: the token (ops/auth.py), then the body's size
(413) and media type (415). Plain ASGI, so a refused request costs no routing or body parsing, and a
request without a token learns nothing about validation.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ops.auth import FailureBrake, Refusal, Role, Tokens, bearer, check, is_public, reaches

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
ROLE_RANK: tuple[Role, ...] = ("admin", "service", "viewer")


class TooLarge(Exception):
    pass


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, or TooLarge as soon as it is known to be over `limit` (never read in full)."""
    length = _header(scope, b"content-length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:  # chunked, or a Content-Length that lied
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def respond_json(send: Send, status: int, body: Any, headers: tuple[tuple[str, str], ...] = ()) -> None:
    raw = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


class ApiGuard:
    def __init__(self, app: ASGIApp, *, tokens: Tokens, brake: FailureBrake, max_body_bytes: int) -> None:
        self.app = app
        self.tokens = tokens
        self.brake = brake
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if is_public(path):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        refusal = check(
            self.tokens, self.brake, method, path, _header(scope, b"authorization"), client[0] if client else "?"
        )
        if refusal is not None:
            await self._refuse(send, refusal)
            return
        # The caller's role for the routes (request.state.role; the audit log records it): the
        # highest of the token's roles that reaches this route.
        scope.setdefault("state", {})["role"] = self._role(method, path, _header(scope, b"authorization"))
        if method.upper() in BODY_METHODS:
            try:
                body = await read_body(scope, receive, self.max_body_bytes)
            except TooLarge:
                await self._refuse(send, Refusal(413, f"the body is over {self.max_body_bytes} bytes"))
                return
            if body and not is_json(_header(scope, b"content-type")):
                await self._refuse(send, Refusal(415, "Content-Type must be application/json"))
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _role(self, method: str, path: str, authorization: str | None) -> Role:
        roles = self.tokens.roles_of(bearer(authorization) or "")
        return next(r for r in ROLE_RANK if r in roles and reaches(r, method, path))

    async def _refuse(self, send: Send, refusal: Refusal) -> None:
        await respond_json(send, refusal.status, {"detail": refusal.detail}, refusal.headers)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then waits on the real one (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
