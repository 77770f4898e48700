"""`Retry-After` as seconds: read by the Graph client's errors and by the limiter's cooldowns."""

from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime

# RFC 9110 delay-seconds is digits; Graph adds a fraction ("2.128"). Nothing else ("inf", "1e400").
DELAY_SECONDS = re.compile(r"^\d{1,9}(\.\d+)?$")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait: Graph sends decimal seconds (`2.128`); HTTP also allows an HTTP-date."""
    if value is None or not value.strip():
        return None
    if DELAY_SECONDS.match(value.strip()):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
