"""Throttling as Graph does it: configurable request limits that answer 429 with Retry-After.

Off until limits are set (`SimState.limits.set([...])` or `PUT /_sim/limits`). A `SimLimit`
allows `rate` requests per `per_s` for the requests matching `method` and `path` (an fnmatch
glob without `/v1.0`), in one shared bucket, or one per distinct value of the first
`scope_segments` path segments (2 for `/chats/{id}`, 4 for `/teams/{t}/channels/{c}`). The
window is exact and sliding: never more than `rate` in any `per_s`, the strictest reading of
https://learn.microsoft.com/en-us/graph/throttling-limits. Refused requests still count against
the window by default, as Graph says throttled requests do. Refusals are counted per limit.
The control routes are in `graphsim/limits_control.py`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class SimLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    method: str = "*"
    path: str
    rate: int = Field(ge=1)
    per_s: float = Field(1.0, gt=0)
    scope_segments: int | None = Field(None, ge=1)
    count_refused: bool = True

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return fnmatchcase(path, self.path)

    def bucket(self, path: str) -> str:
        if self.scope_segments is None:
            return ""
        return "/".join(path.lower().split("/")[1 : 1 + self.scope_segments])


SIM_LIMITS = TypeAdapter(list[SimLimit])


class LimitEnforcer:
    """Sliding-window logs per (limit, bucket); thread-safe (the server runs in its own thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: list[SimLimit] = []
        self._logs: dict[tuple[str, str], deque[float]] = {}
        self._refused: dict[str, int] = {}

    def set(self, limits: list[SimLimit]) -> None:
        """Replace the limits (an empty list turns enforcement off) and forget all counts."""
        with self._lock:
            self._limits = [limit.model_copy() for limit in limits]
            self._logs.clear()
            self._refused = {limit.name: 0 for limit in limits}

    def reset(self) -> None:
        self.set([])

    def limits(self) -> list[SimLimit]:
        with self._lock:
            return list(self._limits)

    def refused(self) -> dict[str, int]:
        """429s answered, per limit name."""
        with self._lock:
            return dict(self._refused)

    def check(self, method: str, path: str, now: float | None = None) -> float | None:
        """Count one request; None if it may pass, else the Retry-After (seconds) to answer with."""
        if not self._limits:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = []
            wait = 0.0
            for limit in self._limits:
                if not limit.matches(method, path):
                    continue
                log = self._logs.setdefault((limit.name, limit.bucket(path)), deque())
                while log and log[0] <= now - limit.per_s:
                    log.popleft()
                if len(log) >= limit.rate:
                    # The count drops below `rate` once the (len - rate + 1)-th oldest leaves the window.
                    wait = max(wait, log[len(log) - limit.rate] + limit.per_s - now)
                    self._refused[limit.name] = self._refused.get(limit.name, 0) + 1
                hits.append((limit, log))
            refused = wait > 0
            for limit, log in hits:
                if not refused or limit.count_refused:
                    log.append(now)
            return math.ceil(round(wait * 1000, 6)) / 1000 if refused else None
