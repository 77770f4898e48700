"""Mask secrets (tokens, client secrets, Authorization headers) before data is stored or logged."""

from __future__ import annotations

import copy
import re
from typing import Any

REDACTED = "[redacted]"

# Substrings of a normalised key (lower case, "-" and "_" removed) that mark its value as secret.
# Normalising lets "client_state", "clientState" and "Client-State" all match "clientstate",
# while "idempotency_key" matches nothing because plain "key" is deliberately absent.
SECRET_KEY_PARTS: tuple[str, ...] = (
    "authorization",
    "token",
    "secret",
    "password",
    "clientstate",
    "apikey",
    "cookie",
    "signature",
)

_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*")
# Query-string or form pairs such as `client_secret=abc&...`; the value ends at a separator.
_PAIR = re.compile(
    r"(?i)\b(client_secret|access_token|refresh_token|id_token|password)=[^&\s\"',;]+",
)
# The same names as JSON members inside raw text (an undecodable payload, an error body).
_JSON_PAIR = re.compile(
    r"(?i)(\"(?:client_secret|access_token|refresh_token|id_token|password)\"\s*:\s*)\"(?:[^\"\\]|\\.)*\"",
)


def is_secret_key(key: str) -> bool:
    """True when a mapping key names something that must never be stored (see SECRET_KEY_PARTS)."""
    normalised = key.lower().replace("_", "").replace("-", "")
    return any(part in normalised for part in SECRET_KEY_PARTS)


def redact_text(text: str) -> str:
    """Mask `Bearer <token>` and `client_secret=` / `access_token=`-style pairs inside free text."""
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _PAIR.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return _JSON_PAIR.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)


def redact(value: Any) -> Any:
    """A deep copy of JSON-like data with secret-keyed values replaced and strings text-redacted.

    Strings outside secret keys go through `redact_text` too, because a token can hide in a
    header list or an error body where no key names it.
    """
    if isinstance(value, dict):
        return {k: REDACTED if is_secret_key(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact(v) for v in value)
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    return copy.deepcopy(value)
