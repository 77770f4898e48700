"""The edge checks of a delivery, as plain functions: handshake token, content type, JSON body.

Graph validates a notification URL by POSTing `?validationToken=<token>`; the endpoint must
answer 200 with the URL-decoded token as `text/plain` within 10 s.
https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks#notification-endpoint-validation
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import pydantic_core

from worker.subscriptions import counters


class BadDelivery(Exception):
    """A delivery refused as a whole: `status` is what the receiver answers, `counter` what it counts."""

    def __init__(self, status: int, counter: str, message: str) -> None:
        self.status = status
        self.counter = counter
        self.message = message
        super().__init__(message)


def validation_token(query_string: bytes | str, *, max_chars: int) -> str | None:
    """The URL-decoded `validationToken`, None when there is none; BadDelivery(400) if it is overlong."""
    raw = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    if "validationToken" not in raw:
        return None
    # A hostile query string could be huge; it is bounded by the server's line limit, and we
    # stop at the token's own bound.
    for name, value in parse_qsl(raw, keep_blank_values=True):
        if name == "validationToken":
            if len(value) > max_chars:
                raise BadDelivery(400, counters.REJECTED_VALIDATION_TOKEN, "validationToken is too long")
            return value
    return None


def check_content_type(header: str | None) -> None:
    """Graph posts `application/json` (maybe with a charset); anything else is 415."""
    media = (header or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise BadDelivery(415, counters.REJECTED_CONTENT_TYPE, "Content-Type must be application/json")


@dataclass(frozen=True)
class Delivery:
    """A changeNotificationCollection: its items (still unchecked) and validationTokens."""

    items: list[Any]
    validation_tokens: list[str]


def parse_delivery(body: bytes) -> Delivery:
    """The collection in a POST body, or BadDelivery(400)."""
    try:
        data = pydantic_core.from_json(body)  # 1.5x json.loads on a 50-item delivery
    except (ValueError, RecursionError) as exc:
        raise BadDelivery(400, counters.REJECTED_MALFORMED_JSON, "body is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("value"), list):
        raise BadDelivery(400, counters.REJECTED_MALFORMED_JSON, "body is not a notification collection")
    tokens = data.get("validationTokens") or []
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise BadDelivery(400, counters.REJECTED_MALFORMED_JSON, "validationTokens must be a list of strings")
    return Delivery(items=data["value"], validation_tokens=tokens)
