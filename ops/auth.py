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
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from graphworks_core.clock import Clock
from graphworks_core.settings import Settings

Role = Literal["admin", "service", "viewer"]

# No token needed: deploy health checks, and the API's own description (it holds no data).
PUBLIC_PATHS = frozenset({"/api/queue/health", "/api/openapi.json", "/api/docs", "/api/docs/oauth2-redirect"})
SERVICE_PREFIXES = ("/api/jobs", "/api/schedules")
READ_METHODS = frozenset({"GET", "HEAD"})
REALM = 'Bearer realm="graphworks"'
FAILURE_WINDOW_S = 60.0
FAILURE_CLIENTS_MAX = 10_000  # clients tracked at once; the oldest is forgotten first


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


class FailureBrake:
    """More than `per_min` wrong tokens from one client within a minute: 429 until the oldest ages out."""

    def __init__(self, per_min: int, clock: Clock) -> None:
        self.per_min = per_min
        self.clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str) -> deque[float] | None:
        times = self._seen.get(client)
        if times is None:
            return None
        horizon = self.clock.now() - FAILURE_WINDOW_S
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._seen[client]
            return None
        return times

    def retry_after_s(self, client: str) -> int | None:
        """Seconds until `client` may try again, or None if it is not held back."""
        times = self._recent(client)
        if times is None or len(times) < self.per_min:
            return None
        return max(1, int(times[0] + FAILURE_WINDOW_S - self.clock.now()) + 1)

    def failed(self, client: str) -> None:
        times = self._recent(client)
        if times is None:
            times = self._seen[client] = deque(maxlen=self.per_min)
            while len(self._seen) > FAILURE_CLIENTS_MAX:
                self._seen.popitem(last=False)
        times.append(self.clock.now())


def check(
    tokens: Tokens, brake: FailureBrake, method: str, path: str, authorization: str | None, client: str
) -> Refusal | None:
    """None if the request may go on, else what to answer."""
    held = brake.retry_after_s(client)
    if held is not None:
        return Refusal(429, "too many wrong tokens from this client; try again later", (("Retry-After", str(held)),))
    if not tokens.entries:
        return Refusal(
            401,
            "no API token is configured (ADMIN_TOKEN, SERVICE_TOKEN, VIEWER_TOKEN): the API refuses every request",
            (("WWW-Authenticate", REALM),),
        )
    presented = bearer(authorization)
    if presented is None:
        return Refusal(401, "an `Authorization: Bearer <token>` header is required", (("WWW-Authenticate", REALM),))
    roles = tokens.roles_of(presented)
    if not roles:
        brake.failed(client)
        return Refusal(401, "the token is not valid", (("WWW-Authenticate", f'{REALM}, error="invalid_token"'),))
    if not any(reaches(role, method, path) for role in roles):
        names = " or ".join(sorted(roles))
        return Refusal(403, f"the {names} token does not reach {method.upper()} {path}")
    return None
