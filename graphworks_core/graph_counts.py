"""Graph requests counted by API and status class, in process memory; a worker loop flushes the
deltas to one Redis hash (keys.GRAPH_REQUESTS) about once a second, so counting costs no Redis
command per request. A crash loses at most the last second's counts (metrics, not outcomes).

Fields: `req:<api>:<status class>` (2xx, 3xx, 4xx, 5xx, error: no response) and
`throttled:<api>` (a 429, or a 503 with Retry-After). `api` is the limiter's API name of the
request's narrowest limit key (ratelimits/config.py: outlook, teams.chat, files, ... global).
"""

from __future__ import annotations

from collections import Counter

_counts: Counter[str] = Counter()


def api_of(limit_keys: tuple[str, ...]) -> str:
    """The API a request's limit keys name: the first key's prefix (the route's own API, e.g. teams.chat_post)."""
    return limit_keys[0].split(":", 1)[0] if limit_keys else "unlimited"


def record(api: str, status: int | None, *, throttled: bool = False) -> None:
    status_class = f"{status // 100}xx" if status is not None else "error"
    _counts[f"req:{api}:{status_class}"] += 1
    if throttled:
        _counts[f"throttled:{api}"] += 1


def drain() -> dict[str, int]:
    """The counts since the last drain (the caller adds them to Redis)."""
    out = dict(_counts)
    _counts.clear()
    return out


def give_back(counts: dict[str, int]) -> None:
    """Counts a flush could not write (Redis down): kept for the next one."""
    _counts.update(counts)
