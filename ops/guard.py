"""What every API request passes before FastAPI sees it: the token and the brake on failed attempts
(ops/auth.py), then the body's size (413) and media type (415). Plain ASGI, so a refused request costs
no routing or body parsing, and a request without a token learns nothing about validation. The brake
is in Redis: an outage there is a 503 with `Retry-After` (ops/errors.py's answer), never a 500.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphworks_core.connections import UNREACHABLE, describe_redis
from graphworks_core.settings import Settings
from ops.auth import NO_TOKENS, FailureBrake, Refusal, Role, Tokens, admit, bearer, is_public
from ops.errors import RETRY_AFTER_S, RedisUnanswered, redis_deadline

log = logging.getLogger("graphworks.api")

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class TooLarge(Exception):
    pass


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def client_address(scope: Scope) -> str:
    """The caller's address, as the brake counts failures by it ("?" when the server gives none)."""
    client = scope.get("client")
    return str(client[0]) if client else "?"


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, or TooLarge as soon as it is known to be over `limit` (never read in full)."""
    length = header(scope, b"content-length")
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
    def __init__(self, app: ASGIApp, *, tokens: Tokens, brake: FailureBrake, settings: Settings) -> None:
        self.app = app
        self.tokens = tokens
        self.brake = brake
        self.settings = settings
        self.max_body_bytes = settings.api_max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if is_public(path):
            await self.app(scope, receive, send)
            return
        admitted = await self._admit(scope, method, path)
        if isinstance(admitted, Refusal):
            await self._refuse(send, admitted)
            return
        # The caller's role for the routes (request.state.role; the audit log records it).
        scope.setdefault("state", {})["role"] = admitted
        if method.upper() in BODY_METHODS:
            try:
                body = await read_body(scope, receive, self.max_body_bytes)
            except TooLarge:
                await self._refuse(send, Refusal(413, f"the body is over {self.max_body_bytes} bytes"))
                return
            if body and not is_json(header(scope, b"content-type")):
                await self._refuse(send, Refusal(415, "Content-Type must be application/json"))
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _credentials(self, scope: Scope) -> tuple[set[Role], bool]:
        """The roles the request's credentials carry, and whether it presented any. One way today, the
        bearer token; another way of presenting a role adds its roles to the set here. A missing token
        is hashed and compared like a wrong one (the empty string matches no configured token), so the
        two take one path."""
        session_role: Role | None = scope.get("state", {}).get("session_role")  # ops/session.py's cookie
        if session_role is not None:
            return {session_role}, True
        presented = bearer(header(scope, b"authorization"))
        return self.tokens.roles_of(presented or ""), presented is not None

    async def _admit(self, scope: Scope, method: str, path: str) -> Role | Refusal:
        if not self.tokens.entries:
            return NO_TOKENS
        roles, given = self._credentials(scope)
        try:
            async with redis_deadline(self.settings):
                return await admit(self.brake, roles, given, method, path, client_address(scope))
        except RedisUnanswered as exc:
            return _unavailable(str(exc))
        except UNREACHABLE as exc:
            where = describe_redis(self.settings)
            return _unavailable(f"Redis at {where} is unreachable ({type(exc).__name__}); try again")

    async def _refuse(self, send: Send, refusal: Refusal) -> None:
        await respond_json(send, refusal.status, {"detail": refusal.detail}, refusal.headers)


def _unavailable(detail: str) -> Refusal:
    """The brake could not ask Redis: 503 with Retry-After, as ops/errors.py answers the routes' outages."""
    log.warning("answered 503: %s", detail)
    return Refusal(503, detail, (("Retry-After", str(RETRY_AFTER_S)),))


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
