"""Who may call what (DESIGN.md, "Auth"): bearer tokens, their roles, the routes each role reaches,
and the brake on a client guessing tokens. Plain functions; ops/guard.py applies them per request.

    ADMIN_TOKEN    every route
    SERVICE_TOKEN  /api/jobs* and /api/schedules* (any method)
    VIEWER_TOKEN   GETs only

Missing or wrong token: 401 with `WWW-Authenticate: Bearer`; a right token on a route its role
does not reach: 403. With no token configured at all every guarded route answers 401: the API
refuses rather than opens. Tokens are compared in constant time (the SHA-256 of each, so their
lengths leak nothing either) against every configured token, with no early exit; they are never
logged or echoed.

A missing token is a failed attempt like a wrong one, and the two take one path (the same hashing,
the same one Redis call to the brake), so their timings do not tell them apart. More than
API_AUTH_FAILURES_PER_MIN failed attempts from one client address within a minute: 429 with
`Retry-After` for a minute's cool-off, on every guarded route and for every token, the right one
included (a guesser must not learn when it guessed right). The brake is kept in Redis
(worker/auth_brake.py), so every `serve` process agrees; a good token costs one Redis call (is the
client held?), a failure one.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from graphworks_core.settings import Settings
from worker.auth_brake import FailureBrake as FailureBrake  # the brake, for ops/app.py and ops/session.py

Role = Literal["admin", "service", "viewer"]

# No token needed: deploy health checks, and the API's own description (it holds no data).
PUBLIC_PATHS = frozenset({"/api/queue/health", "/api/openapi.json", "/api/docs", "/api/docs/oauth2-redirect"})
SERVICE_PREFIXES = ("/api/jobs", "/api/schedules")
READ_METHODS = frozenset({"GET", "HEAD"})
ROLE_RANK: tuple[Role, ...] = ("admin", "service", "viewer")  # a request's role: the highest that reaches the route
REALM = 'Bearer realm="graphworks"'


def is_public(path: str) -> bool:
    return (path.rstrip("/") or "/") in PUBLIC_PATHS


def reaches(role: Role, method: str, path: str) -> bool:
    """Whether `role` may call `method path` (a guarded path)."""
    if role == "admin":
        return True
    if role == "viewer":
        return method.upper() in READ_METHODS
    path = path.rstrip("/")
    return any(path == prefix or path.startswith(prefix + "/") for prefix in SERVICE_PREFIXES)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class Tokens:
    """The configured tokens, kept as digests."""

    entries: tuple[tuple[Role, bytes], ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> Tokens:
        configured: list[tuple[Role, bytes]] = []
        given: tuple[tuple[Role, SecretStr | None], ...] = (
            ("admin", settings.admin_token),
            ("service", settings.service_token),
            ("viewer", settings.viewer_token),
        )
        for role, secret in given:
            if secret is not None and secret.get_secret_value():
                configured.append((role, _digest(secret.get_secret_value())))
        return cls(tuple(configured))

    @property
    def roles(self) -> list[Role]:
        return [role for role, _ in self.entries]

    def roles_of(self, presented: str) -> set[Role]:
        """The roles whose token this is; every configured token is compared, whatever matched."""
        got = _digest(presented)
        matched: set[Role] = set()
        for role, digest in self.entries:
            if hmac.compare_digest(got, digest):
                matched.add(role)
        return matched


@dataclass(frozen=True)
class Refusal:
    status: int
    detail: str
    headers: tuple[tuple[str, str], ...] = ()


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


NO_TOKENS = Refusal(
    401,
    "no API token is configured (ADMIN_TOKEN, SERVICE_TOKEN, VIEWER_TOKEN): the API refuses every request",
    (("WWW-Authenticate", REALM),),
)


async def braked(brake: FailureBrake, roles: set[Role], client: str) -> Refusal | None:
    """The brake's one call for an attempt with these roles (none: a failure, recorded), and the
    429 to answer if `client` is held. The API's guard and the dashboard's sign-in both use it."""
    held = await (brake.retry_after_s(client) if roles else brake.failed(client))
    if held is None:
        return None
    detail = "too many failed token attempts from this client; try again later"
    return Refusal(429, detail, (("Retry-After", str(held)),))


async def admit(
    brake: FailureBrake, roles: set[Role], token_given: bool, method: str, path: str, client: str
) -> Role | Refusal:
    """The role a request goes on with, or what to answer. `roles` are those of the credentials it
    presented (none: missing or wrong); one Redis call to the brake either way."""
    held = await braked(brake, roles, client)
    if held is not None:
        return held
    if not roles:
        if not token_given:
            return Refusal(401, "an `Authorization: Bearer <token>` header is required", (("WWW-Authenticate", REALM),))
        return Refusal(401, "the token is not valid", (("WWW-Authenticate", f'{REALM}, error="invalid_token"'),))
    role = next((r for r in ROLE_RANK if r in roles and reaches(r, method, path)), None)
    if role is None:
        names = " or ".join(sorted(roles))
        return Refusal(403, f"the {names} token does not reach {method.upper()} {path}")
    return role
