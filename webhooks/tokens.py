"""validationTokens of rich notifications: JWTs Graph signs, checked before any item is trusted.

Per "Validate the authenticity of notifications": the token is signed by the Microsoft identity
platform (keys from the JWKS), not expired, its audience is our app (client) id, and it was
issued to Microsoft Graph's change notification publisher, app id 0bf30f3b-4a52-48df-9a82-234910c4a086
(the `appid` claim in v1 tokens, `azp` in v2).
https://learn.microsoft.com/en-us/graph/change-notifications-with-resource-data#validate-the-authenticity-of-notifications

PyJWKClient caches the key set (`lifespan`) and fetches it with urllib, which blocks: the
receiver calls `validate` in a thread.
"""

from __future__ import annotations

from collections.abc import Sequence

import jwt
from jwt import PyJWKClient

GRAPH_NOTIFICATION_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"


class JwksUnavailable(Exception):
    """The key set could not be fetched: our problem, not the delivery's (the receiver answers 503)."""


class TokenValidator:
    def __init__(
        self,
        jwks_url: str,
        client_id: str | None,
        *,
        cache_s: int = 3600,
        fetch_timeout_s: float = 1.5,
        leeway_s: float = 60.0,
    ) -> None:
        self.client_id = client_id
        self.leeway_s = leeway_s
        self._jwks = PyJWKClient(jwks_url, cache_jwk_set=True, lifespan=cache_s, timeout=fetch_timeout_s)

    def valid(self, token: str) -> bool:
        """Whether one token passes every check; JwksUnavailable if the keys cannot be fetched."""
        if self.client_id is None:
            return False  # without our client id no audience can be checked: refuse rich data
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise JwksUnavailable(str(exc)) from exc
        except jwt.PyJWTError:
            return False
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.client_id,
                leeway=self.leeway_s,
                options={"require": ["exp", "aud"]},
            )
        except jwt.PyJWTError:
            return False
        return GRAPH_NOTIFICATION_APP_ID in (claims.get("appid"), claims.get("azp"))

    def all_valid(self, tokens: Sequence[str]) -> bool:
        """Graph sends one token per app/tenant pair in the delivery; every one must pass."""
        return bool(tokens) and all(self.valid(t) for t in tokens)
