"""One warning when Redis stops answering, one line when it answers again; never a traceback per
poll. Every loop that talks to Redis reports to one tracker per process: `failed(exc)` after an
error, `ok()` after a success (a None check when nothing is wrong, so cheap on the hot path).
"""

from __future__ import annotations

import logging
import time


class Outage:
    def __init__(self, log: logging.Logger, where: str) -> None:
        self._log = log
        self._where = where
        self._since: float | None = None
        self.outages = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        if self._since is None:
            self._since = time.monotonic()
            self.outages += 1
            self._log.warning(
                "redis unreachable at %s (%s: %s); retrying until it answers", self._where, type(exc).__name__, exc
            )

    def ok(self) -> None:
        if self._since is not None:
            self._log.warning("redis answers again at %s after %.1f s", self._where, time.monotonic() - self._since)
            self._since = None


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
