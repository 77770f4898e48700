"""The dashboard's sign-in (DESIGN.md, "Auth"): a token once, then an HttpOnly, SameSite=Strict cookie.

    POST   /dashboard/session   {"token"}: 200 {"role", "csrf"} and the cookie; 401 wrong token, 403 a
                                service token (it reaches no page of the dashboard), 429 braked
    GET    /dashboard/session   {"signed_in", "role", "csrf"} (200 either way: a page asking whether it is
                                signed in is not an error, and the browser logs none)
    DELETE /dashboard/session   sign out (needs the CSRF header)

A session is a random 256-bit id in the cookie; Redis keeps, under the SHA-256 of that id (so a
dump of Redis holds no usable cookie), the role, the CSRF token and the digest of the token signed
in with, for DASHBOARD_SESSION_TTL_S. Every `serve` process sees the same sessions. A token taken
out of the settings ends its sessions at their next request.

`SessionAuth` sits in front of ops/guard.py: an API request with the cookie and no Authorization
header gets the session's role (`scope["state"]["session_role"]`), and one that changes state must
carry the session's CSRF token in `X-CSRF-Token` (403 otherwise). A cross-site page cannot read
that token, and SameSite=Strict keeps the cookie off cross-site requests in the first place.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from http.cookies import SimpleCookie

import redis.asyncio as aioredis
from starlette.types import ASGIApp, Receive, Scope, Send

from graphworks_core import keys
from graphworks_core.connections import UNREACHABLE
from graphworks_core.settings import Settings
from ops.auth import FailureBrake, Role, Tokens, braked
from ops.errors import RETRY_AFTER_S, RedisUnanswered, redis_deadline
from ops.guard import TooLarge, client_address, header, is_json, read_body, respond_json

COOKIE = "graphworks_session"
CSRF_HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_PATH = "/dashboard/session"
SIGN_IN_MAX_BYTES = 4096
REDIS_DOWN: tuple[type[BaseException], ...] = (RedisUnanswered, *UNREACHABLE)  # answered 503
DASHBOARD_ROLES: tuple[Role, ...] = ("admin", "viewer")  # by rank; the service token opens no page


def same(given: str | None, expected: str) -> bool:
    """Constant-time equality of a presented secret (any characters) and the expected one."""
    return hmac.compare_digest((given or "").encode("utf-8", "surrogateescape"), expected.encode())


async def unavailable(send: Send) -> None:
    await respond_json(send, 503, {"detail": "Redis is unreachable; try again"}, (("Retry-After", str(RETRY_AFTER_S)),))


@dataclass(frozen=True)
class Session:
    role: Role
    csrf: str


def _sid_key(sid: str) -> str:
    return keys.dashboard_session(hashlib.sha256(sid.encode()).hexdigest())


def cookie_sid(scope: Scope) -> str | None:
    raw = header(scope, b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # http.cookies raises CookieError on junk: no session, not a 500
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


class Sessions:
    """Dashboard sessions in Redis."""

    def __init__(self, redis: aioredis.Redis, tokens: Tokens, settings: Settings) -> None:
        self.redis = redis
        self.tokens = tokens
        self.settings = settings  # each request's Redis work is bounded as the API's is (redis_deadline)
        self.ttl_s = settings.dashboard_session_ttl_s

    async def open(self, role: Role, token: str) -> tuple[str, Session]:
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        digest = hashlib.sha256(token.encode()).hexdigest()
        key = _sid_key(sid)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"role": role, "csrf": csrf, "token": digest})
            pipe.expire(key, max(1, int(self.ttl_s)))
            await pipe.execute()
        return sid, Session(role, csrf)

    async def get(self, sid: str) -> Session | None:
        raw: dict[bytes | str, bytes | str] = await self.redis.hgetall(_sid_key(sid))  # type: ignore[misc]
        if not raw:
            return None
        fields = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                  for k, v in raw.items()}  # fmt: skip
        role = fields.get("role")
        try:
            digest = bytes.fromhex(fields.get("token", ""))
        except ValueError:
            return None
        # The token it was opened with must still be configured for that role.
        if not any(r == role and hmac.compare_digest(d, digest) for r, d in self.tokens.entries):
            return None
        return Session(role, fields.get("csrf", ""))  # type: ignore[arg-type]

    async def close(self, sid: str) -> None:
        await self.redis.delete(_sid_key(sid))


def _cookie(value: str, max_age: int, secure: bool) -> str:
    flags = f"{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    return flags + ("; Secure" if secure else "")


def _is_https(scope: Scope) -> bool:
    return scope.get("scheme") == "https" or header(scope, b"x-forwarded-proto") == "https"


class SessionEndpoint:
    """POST, GET and DELETE /dashboard/session."""

    def __init__(self, sessions: Sessions, brake: FailureBrake) -> None:
        self.sessions = sessions
        self.brake = brake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with redis_deadline(self.sessions.settings):
                await self._answer(scope, receive, send)
        except REDIS_DOWN:
            await unavailable(send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"].upper()
        sid = cookie_sid(scope)
        session = await self.sessions.get(sid) if sid else None
        nostore = (("Cache-Control", "no-store"),)
        if method == "GET":
            body = {"signed_in": session is not None, "role": session.role if session else None,
                    "csrf": session.csrf if session else None}  # fmt: skip
            await respond_json(send, 200, body, nostore)
        elif method == "POST":
            await self._sign_in(scope, receive, send)
        elif method == "DELETE":
            if sid and session is not None:
                if not same(header(scope, CSRF_HEADER), session.csrf):
                    await respond_json(send, 403, {"detail": "missing or wrong X-CSRF-Token header"})
                    return
                await self.sessions.close(sid)
            clear = ("Set-Cookie", _cookie("", 0, _is_https(scope)))
            await respond_json(send, 200, {"signed_in": False}, (*nostore, clear))
        else:
            await respond_json(send, 405, {"detail": "GET, POST or DELETE"}, (("Allow", "GET, POST, DELETE"),))

    async def _sign_in(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_json(header(scope, b"content-type")):
            await respond_json(send, 415, {"detail": "Content-Type must be application/json"})
            return
        try:
            given = json.loads(await read_body(scope, receive, SIGN_IN_MAX_BYTES)).get("token")
        except TooLarge:
            await respond_json(send, 413, {"detail": f"the body is over {SIGN_IN_MAX_BYTES} bytes"})
            return
        except (ValueError, AttributeError):
            given = None
        token = given.strip() if isinstance(given, str) else ""
        # As the guard does: a missing token is a failure like a wrong one, one brake call either way.
        roles = self.sessions.tokens.roles_of(token)
        held = await braked(self.brake, roles, client_address(scope))
        if held is not None:
            await respond_json(send, held.status, {"detail": held.detail}, held.headers)
            return
        if not roles:
            await respond_json(
                send, 401, {"detail": "the token is not valid" if token else "the access token is required"}
            )
            return
        role = next((r for r in DASHBOARD_ROLES if r in roles), None)
        if role is None:
            detail = "the service token opens no page of the dashboard: sign in with ADMIN_TOKEN or VIEWER_TOKEN"
            await respond_json(send, 403, {"detail": detail})
            return
        sid, session = await self.sessions.open(role, token)
        cookie = ("Set-Cookie", _cookie(sid, max(1, int(self.sessions.ttl_s)), _is_https(scope)))
        await respond_json(send, 200, {"signed_in": True, "role": role, "csrf": session.csrf},
                           (("Cache-Control", "no-store"), cookie))  # fmt: skip


class SessionAuth:
    """In front of the guard: the cookie's role for API requests that carry no Authorization header."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and header(scope, b"authorization") is None:
            sid = cookie_sid(scope)
            try:
                async with redis_deadline(self.sessions.settings):
                    session = await self.sessions.get(sid) if sid else None
            except REDIS_DOWN:
                await unavailable(send)
                return
            if session is not None:
                if scope["method"].upper() not in SAFE_METHODS and not same(header(scope, CSRF_HEADER), session.csrf):
                    await respond_json(send, 403, {"detail": "missing or wrong X-CSRF-Token header"})
                    return
                scope.setdefault("state", {})["session_role"] = session.role
        await self.app(scope, receive, send)
