"""The interface the Graph client calls around each request: wait for a permit for its limit keys.

`Limiter.permit(method, url, uses)` resolves which limits a request counts against (the route
table in `ratelimits/routes.py`, or the caller's explicit `uses`), waits for all of them at once
and holds the permit while the request is in flight. `Limiter.reserve` takes the same decision
earlier, before the request is built, so a deferral costs no request building. A wait longer than the configured
threshold raises `LimitDeferred`, which the runner turns into a reschedule of the same job:
waiting never costs an attempt. `Permit.throttled()` reports a 429 (or 503 with Retry-After) so
the limiter closes that scope for every worker until Retry-After has passed.

NoLimit lets every request through; `ratelimits.limiter.GraphLimiter` is the real one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from graphworks_core.envelope import Booking
from ratelimits.plan import Reservation
from ratelimits.use import Use

__all__ = ["Booking", "LimitDeferred", "Limiter", "NoLimit", "Permit", "Reservation", "Use"]


class LimitDeferred(Exception):  # control flow, not a JobFailure
    """The wait for a permit is longer than the threshold: run the job again at `until`.

    Not a JobFailure: the runner reschedules the same envelope (same attempt, no history entry).
    Processors must let it propagate.
    """

    def __init__(self, until: float, booking: Booking | None = None, keys: Sequence[str] = ()) -> None:
        self.until = until
        self.booking = booking
        self.keys = tuple(keys)
        super().__init__(f"rate limited on {', '.join(self.keys) or '?'}: run again at {until:.3f}")


class Permit(Protocol):
    async def throttled(self, retry_after_s: float | None) -> None:
        """Graph answered 429 (or 503 with Retry-After): close this request's scopes for everyone."""


class Limiter(Protocol):
    async def reserve(
        self, method: str, url: str, uses: Sequence[Use] | None = None, *, body_bytes: int = 0
    ) -> Reservation | None:
        """Decide for one request before it is built: its slot, or LimitDeferred for a long wait."""

    async def release(self, reservation: Reservation) -> None:
        """Give back a reservation whose request never reached the wire."""

    def permit(
        self,
        method: str,
        url: str,
        uses: Sequence[Use] | None = None,
        *,
        body_bytes: int = 0,
        reservation: Reservation | None = None,
    ) -> AbstractAsyncContextManager[Permit]:
        """Wait for (or defer on) every limit of one request; hold the permit for the block.

        `body_bytes` (the request body's size) is charged to byte budgets of routed uploads; a
        `reservation` made for this request by `reserve` is waited for instead of deciding again.
        """


class _NoPermit:
    async def throttled(self, retry_after_s: float | None) -> None:
        return None


class NoLimit:
    """Every request may go at once; 429s close nothing."""

    async def reserve(
        self, method: str, url: str, uses: Sequence[Use] | None = None, *, body_bytes: int = 0
    ) -> Reservation | None:
        return None

    async def release(self, reservation: Reservation) -> None:
        return None

    @asynccontextmanager
    async def permit(
        self,
        method: str,
        url: str,
        uses: Sequence[Use] | None = None,
        *,
        body_bytes: int = 0,
        reservation: Reservation | None = None,
    ) -> AsyncIterator[Permit]:
        yield _NoPermit()
