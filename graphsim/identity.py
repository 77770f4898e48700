"""graphsim's fake Microsoft identity platform: refresh tokens it issued and the grants it made.

Enough of the v2.0 token endpoint for MSAL's refresh-token grant: refresh tokens rotate on every
grant, each grant issues a new access token, and a revoked refresh token gets `invalid_grant`.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class IssuedGrant:
    refresh_token_used: str
    access_token: str
    refresh_token: str
    scope: str
    client_id: str


class IdentityStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._valid: set[str] = set()
        self._grants: list[IssuedGrant] = []

    def reset(self) -> None:
        with self._lock:
            self._valid.clear()
            self._grants.clear()

    def issue_refresh_token(self, user: str) -> str:
        """A refresh token the endpoint will accept (what a user's sign-in would have produced)."""
        with self._lock:
            token = f"rt.{next(self._counter)}.{user}"
            self._valid.add(token)
            return token

    def redeem(self, refresh_token: str, scope: str, client_id: str) -> IssuedGrant | None:
        """A new access + rotated refresh token, or None if the refresh token is unknown or revoked."""
        with self._lock:
            if refresh_token not in self._valid:
                return None
            n = next(self._counter)
            user = refresh_token.split(".", 2)[-1]
            grant = IssuedGrant(refresh_token, f"at.{n}.{user}", f"rt.{n}.{user}", scope, client_id)
            self._valid.add(grant.refresh_token)  # the old one stays valid, as Entra's do until expiry
            self._grants.append(grant)
            return grant

    def grants(self) -> list[IssuedGrant]:
        with self._lock:
            return list(self._grants)
