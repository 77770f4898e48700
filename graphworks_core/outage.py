"""One warning when Redis stops answering, one line when it answers again; never a traceback per
poll. Every loop that talks to Redis reports to one tracker per process: `failed(exc)` after an
error, `ok()` after a success (a None check when nothing is wrong, so cheap on the hot path).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

# Errors reported this soon after Redis answered again are the outage's stragglers (commands that
# were failing while it was down surface a little later, one per stale pooled connection).
SETTLE_S = 5.0


class Outage:
    def __init__(self, log: logging.Logger, where: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._where = where
        self._clock = clock
        self._since: float | None = None
        self._recovered_at: float | None = None
        self.outages = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        if self._since is not None:
            return
        now = self._clock()
        if self._recovered_at is not None and now - self._recovered_at < SETTLE_S:
            return
        self._since = now
        self.outages += 1
        self._log.warning(
            "redis unreachable at %s (%s: %s); retrying until it answers", self._where, type(exc).__name__, exc
        )

    def ok(self) -> None:
        if self._since is not None:
            now = self._clock()
            self._log.warning("redis answers again at %s after %.1f s", self._where, now - self._since)
            self._since = None
            self._recovered_at = now


class Backoff:
    """Delays for retrying through an outage: `first_s` doubling up to `cap_s`; `reset()` on success."""

    def __init__(self, first_s: float = 0.05, cap_s: float = 2.0) -> None:
        self._first_s = first_s
        self._cap_s = cap_s
        self._next_s = first_s

    def next(self) -> float:
        delay, self._next_s = self._next_s, min(self._cap_s, self._next_s * 2)
        return delay

    def reset(self) -> None:
        self._next_s = self._first_s
