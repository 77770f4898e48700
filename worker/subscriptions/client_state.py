"""clientState: a random secret per subscription, checked in constant time on every notification.

Graph echoes the subscription's clientState in each notification; it is at most 128 characters.
https://learn.microsoft.com/en-us/graph/api/resources/subscription (clientState property)
We keep only its SHA-256 in Redis, so a Redis dump does not hand out the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

MAX_CLIENT_STATE_CHARS = 128


def new_client_state() -> str:
    """128 URL-safe characters (96 random bytes): Graph's maximum length, 768 bits of secret."""
    state = secrets.token_urlsafe(96)
    assert len(state) == MAX_CLIENT_STATE_CHARS
    return state


def client_state_digest(client_state: str) -> str:
    return hashlib.sha256(client_state.encode()).hexdigest()


def client_state_ok(given: object, expected_digest: str) -> bool:
    """Whether a notification's clientState is the subscription's (constant-time compare)."""
    if not isinstance(given, str) or len(given) > MAX_CLIENT_STATE_CHARS:
        return False
    return hmac.compare_digest(client_state_digest(given), expected_digest)
