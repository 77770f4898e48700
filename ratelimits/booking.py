"""The slot a deferred job booked, handed from the runner to the limiter for the job's run.

The runner sets it from the envelope before running the processor; the limiter uses it for the
first request with the same meters, then forgets it. A contextvar, because the Graph client is
shared by every job a worker runs at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from graphworks_core.envelope import Booking

_current: ContextVar[list[Booking]] = ContextVar("graphworks_limit_booking")


@contextmanager
def holding(booking: Booking | None) -> Iterator[None]:
    """Run a job with its booking (if any) available to the limiter."""
    token = _current.set([booking] if booking is not None else [])
    try:
        yield
    finally:
        _current.reset(token)


def take(signature: tuple[str, ...]) -> Booking | None:
    """The booking for these meters, once; None if the job has none for them."""
    held = _current.get(None)
    if not held or held[0].keys != signature:
        return None
    return held.pop()
