"""GraphLimiter: the Limiter the Graph client calls around each request.

Resolves a request's limits (route table or explicit uses, plus `global`), asks the backend once
per attempt to take them all, sleeps short waits on the injected clock and raises LimitDeferred
for long ones. The decision is taken before the SDK builds the request (`reserve`), the wait at
the wire (`permit`). A deferral that comes from the rate books its slot, so a job is deferred once and
then goes at its slot, in order, instead of coming back to queue again and again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from graphworks_core.clock import Clock
from ratelimits import booking, routes
from ratelimits.backend import Backend, KeyStats
from ratelimits.base import Booking, LimitDeferred, Permit, Use
from ratelimits.config import LimitsConfig
from ratelimits.plan import Plan, Reservation, build_plan
from ratelimits.waiting import Sleeper, SystemSleeper

log = logging.getLogger("graphworks.limits")

# A booked slot is still used if the job comes back this late; later, its slot is lost and the
# request is paced afresh, so jobs delayed in the queue never bunch up into a burst.
BOOKING_GRACE_S = 0.02
# A deferred job is due this long before its booked slot and sleeps the rest in the worker, so
# queue and promotion latency does not make it late (0.5 s was not enough while 4 workers on
# 2 cores were deferring 2,000 jobs at once: bench/limits_chat.py).
DEFER_LEAD_S = 1.0
# Woken this much after the slot (a busy event loop), the request is paced afresh instead of
# sent late: a late send bunches with the slots after it, and Graph may count both in one
# window. Headroom absorbs what is left (a few ms from permit to wire). At most MAX_REPACES times.
LATE_TOLERANCE_S = 0.01
MAX_REPACES = 3
_UPLOAD_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _request_key(method: str, url: str) -> tuple[str, str]:
    """What ties a reservation to the request at the wire: method and path. Not the whole URL: the
    SDK's middleware rewrites the query (%24select -> $select) and httpx normalises its encoding."""
    return method.upper(), urlsplit(url).path


@dataclass
class _Permit:
    limiter: GraphLimiter
    plan: Plan

    async def throttled(self, retry_after_s: float | None) -> None:
        wait = retry_after_s if retry_after_s is not None else self.limiter.config.cooldown_default_s
        now = self.limiter.clock.now()
        await self.limiter.backend.cool(self.plan, now + wait, now)
        log.warning("throttled keys=%s cooldown_s=%.3f", ",".join(self.plan.names), wait)


class GraphLimiter:
    def __init__(
        self,
        backend: Backend,
        config: LimitsConfig,
        *,
        tenant: str,
        base_url: str,
        clock: Clock,
        sleeper: Sleeper | None = None,
        late_tolerance_s: float = LATE_TOLERANCE_S,
    ) -> None:
        self.backend = backend
        self.late_tolerance_s = late_tolerance_s
        self.config = config
        self.apis = config.resolved()
        self.tenant = tenant
        self.base_url = base_url
        self.clock = clock
        self.sleeper = sleeper or SystemSleeper(clock)

    def plan(self, method: str, url: str, uses: Sequence[Use] | None = None, *, body_bytes: int = 0) -> Plan:
        """The limits one request counts against."""
        if uses is None:
            uses = routes.resolve(method, routes.graph_path(url, self.base_url))
            if body_bytes and method.upper() in _UPLOAD_METHODS:
                uses = routes.with_upload(uses, body_bytes)
        return build_plan(
            [*uses, Use("global")], self.apis, self.tenant,
            headroom=self.config.headroom, lease_ttl_s=self.config.lease_ttl_s,
        )  # fmt: skip

    async def reserve(
        self, method: str, url: str, uses: Sequence[Use] | None = None, *, body_bytes: int = 0
    ) -> Reservation | None:
        """Decide for one request before it is built: its slot, or LimitDeferred for a long wait.

        The Graph client calls this before the SDK builds the request and runs its middleware, so a
        job that is only going to be deferred costs no SDK work (the start of a bulk send defers
        nearly every job once); the wait itself and the lateness check happen at the wire, in
        `permit(..., reservation=)`. None when the request has no limits.
        """
        plan = self.plan(method, url, uses, body_bytes=body_bytes)
        if plan.empty:
            return None
        lease_id = uuid.uuid4().hex
        booked = booking.take(plan.signature)
        at = await self._decide(plan, lease_id, booked.at if booked is not None else None)
        return Reservation(plan, lease_id, at, _request_key(method, url))

    async def release(self, reservation: Reservation) -> None:
        """Give back a reservation the request never used (it failed before the wire)."""
        if reservation.plan.leases:
            await self.backend.release(reservation.plan, reservation.lease_id)

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
        """Held while one request is on the wire: its slot waited for, its lease released after.

        A `reservation` made for this same request is used instead of deciding again (a redirect
        hop, for one, is a request of its own and decides afresh).
        """
        if reservation is None or reservation.used or reservation.request != _request_key(method, url):
            reservation = await self.reserve(method, url, uses, body_bytes=body_bytes)
        if reservation is None:
            yield _Permit(self, Plan(names=()))
            return
        reservation.used = True
        try:
            await self._at_wire(reservation)
            yield _Permit(self, reservation.plan)
        finally:
            await self.release(reservation)

    async def _decide(self, plan: Plan, lease_id: str, booked_at: float | None) -> float:
        """The slot this request goes at; short waits for a cooldown or a lease are slept here."""
        max_wait = self.config.max_wait_s
        while True:
            now = self.clock.now()
            if booked_at is not None and now > booked_at + BOOKING_GRACE_S:
                booked_at = None  # came back too late: pace it afresh
            decision = await self.backend.acquire(plan, now, max_wait, booked_at, lease_id)
            if decision.kind == "go":
                return decision.at
            if decision.kind == "book":
                until = max(now, decision.at - min(DEFER_LEAD_S, max_wait / 2))
                raise LimitDeferred(until, Booking(keys=plan.signature, at=decision.at), plan.names)
            if decision.kind == "defer":
                raise LimitDeferred(decision.at, None, plan.names)
            await self.sleeper.until(decision.at)

    async def _at_wire(self, reservation: Reservation) -> None:
        """Sleep until the slot; woken late (a busy loop), pace the request afresh, a few times at most."""
        plan = reservation.plan
        for repace in range(MAX_REPACES + 1):
            await self.sleeper.until(reservation.at)
            late = self.clock.now() - reservation.at
            if late <= self.late_tolerance_s or repace == MAX_REPACES or not plan.meters:
                return
            log.debug("late by %.3f s for %s: paced afresh", late, ",".join(plan.names))
            await self.release(reservation)
            reservation.at = await self._decide(plan, reservation.lease_id, None)

    async def snapshot(self, limit: int = 100) -> list[KeyStats]:
        return await self.backend.snapshot(self.clock.now(), limit)
