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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from ratelimits.limiter import Reservation


@dataclass(frozen=True)
class Use:
    """One limit a request counts against, declared by a caller when the URL does not say enough.

    `api` names an entry of the limits table (`outlook`, `teams.chat`, `files`, ...); `scope` is
    what the API is limited per (a mailbox, a chat id, `team:channel`; empty for tenant-wide
    APIs); `upload_bytes` is charged to the API's byte budget (an upload session's chunk).
    """

    api: str
    scope: str = ""
    upload_bytes: int = 0


class Booking(BaseModel):
    """A slot a deferred job booked for one request: when it comes back, it goes at `at`
    without being charged again. `keys` are the rate keys the slot was booked on."""

    model_config = ConfigDict(frozen=True)

    keys: tuple[str, ...]
    at: float


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
