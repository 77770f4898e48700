"""The limiter's algorithm, once, in Python: the in-process backend runs it, the Redis backend's
`lua/acquire.lua` is the same steps in Lua, and `tests/ratelimits` holds both to the same tests.

Pacing: each request occupies an interval [slot, slot + step) on every meter it uses, step =
window / limit (bytes x window / budget for a byte budget), and intervals on a key never
overlap. So the slots of a key are at least `step` apart and no window holds more than the
limit, evenly paced with no burst (DESIGN.md: assume the strictest enforcement). This is GCRA
with a calendar instead of one theoretical-arrival time: a request that must wait for its chat
(1 rps) books a tenant interval a second ahead and leaves the tenant's earlier intervals to
other chats; with one number per key the tenant would be blocked until then.

State per key: the booked time as runs of merged intervals. An interval is merged with a
neighbour when the gap between them is shorter than the meter's `merge_gap_s` (its step for a
rate: no request of that meter fits there anyway; 0 for a byte budget, whose steps vary), so a
key booked solid for minutes is one run, and finding a slot or booking one takes a few
O(log n) lookups however far ahead the key is booked (a scan of every booked interval cost
10 ms of Redis per acquire at 2,000 booked).

One acquire checks every key of a request together:

1. cooldown: any key closed by a 429 -> retry at its end (defer if that is beyond max_wait);
2. the slot: the earliest time >= now free on every meter (or the booked one);
3. a slot more than max_wait ahead is booked and the job is deferred to it, holding no lease;
4. leases: expired ones are dropped; a full key -> retry when its first lease expires or after
   a short poll, whichever is sooner (a lease normally ends when its request does);
5. commit: the intervals are booked, a lease is taken, expiring ttl after the slot.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Literal

from ratelimits.plan import Plan

LEASE_POLL_S = 0.05  # how soon to look again at a full lease key
MAX_ROUNDS = 64  # passes over the meters when finding a slot; each pass only moves it later
MERGE_EPSILON_S = 1e-6  # gaps this close to a step are kept (lua/acquire.lua has the same)
RATE_BUCKET_S = 10  # the "current rate" is requests in the last full bucket of this length

Kind = Literal["go", "retry", "defer", "book"]


@dataclass(frozen=True)
class Decision:
    """go: permitted at `at` (maybe later than now: sleep till then; leases taken);
    retry: nothing taken, ask again at `at`; defer: nothing taken, the job leaves until `at`;
    book: the slot `at` is booked for this request, the job leaves until then."""

    kind: Kind
    at: float


@dataclass
class KeyCounters:
    counts: dict[str, int] = field(default_factory=dict)
    last_seen: float = 0.0
    bucket: int = -1
    in_bucket: int = 0
    in_previous: int = 0


@dataclass
class MemoryState:
    timelines: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # sorted disjoint (start, end) runs
    leases: dict[str, dict[str, float]] = field(default_factory=dict)  # key -> lease id -> expiry
    cool: dict[str, float] = field(default_factory=dict)
    stats: dict[str, KeyCounters] = field(default_factory=dict)

    def timeline(self, key: str) -> list[tuple[float, float]]:
        return self.timelines.setdefault(key, [])

    def prune(self, key: str, now: float) -> None:
        """Forget runs that have ended by `now`."""
        timeline = self.timelines.get(key)
        if timeline:
            del timeline[: bisect.bisect_right(timeline, now, key=_end)]

    def bump(self, names: tuple[str, ...], field_name: str, now: float, by: int = 1) -> None:
        for name in names:
            c = self.stats.setdefault(name, KeyCounters())
            c.counts[field_name] = c.counts.get(field_name, 0) + by
            c.last_seen = now

    def count_sent(self, names: tuple[str, ...], now: float) -> None:
        bucket = int(now // RATE_BUCKET_S)
        for name in names:
            c = self.stats.setdefault(name, KeyCounters())
            if c.bucket != bucket:
                c.in_previous = c.in_bucket if c.bucket == bucket - 1 else 0
                c.bucket, c.in_bucket = bucket, 0
            c.in_bucket += 1


def _end(run: tuple[float, float]) -> float:
    return run[1]


def earliest_fit(timeline: list[tuple[float, float]], t: float, step: float) -> float:
    """The earliest time >= t at which [time, time + step) overlaps no run of `timeline`."""
    i = bisect.bisect_right(timeline, t, key=_end)  # the first run ending after t
    for start, end in timeline[i:]:
        if start >= t + step:
            break
        t = max(t, end)
    return t


def book(timeline: list[tuple[float, float]], start: float, end: float, merge_gap: float) -> None:
    """Add [start, end) (free: find_slot chose it), merged with neighbours closer than `merge_gap`."""
    i = bisect.bisect_right(timeline, start, key=_end)  # runs before i end by `start`
    lo, hi = i, i
    if i > 0 and _merges(timeline[i - 1][1], start, merge_gap):
        lo, start = i - 1, timeline[i - 1][0]
    if i < len(timeline) and _merges(end, timeline[i][0], merge_gap):
        hi, end = i + 1, max(end, timeline[i][1])
    timeline[lo:hi] = [(start, end)]


def _merges(end: float, next_start: float, merge_gap: float) -> bool:
    # A gap of exactly one step (a skipped slot) is usable: float error must not merge it away.
    return next_start - end <= 0 or next_start - end < merge_gap - MERGE_EPSILON_S


def find_slot(state: MemoryState, plan: Plan, t: float) -> float:
    """The earliest time >= t free on every meter (each move can only push the others later)."""
    for _ in range(MAX_ROUNDS):
        moved = False
        for m in plan.meters:
            fit = earliest_fit(state.timeline(m.key), t, m.step_s)
            if fit > t:
                t, moved = fit, True
        if not moved:
            break
    return t


def acquire(state: MemoryState, plan: Plan, now: float, max_wait_s: float, booked_at: float | None,
            lease_id: str) -> Decision:  # fmt: skip
    """Steps 1-5 above on in-process state (atomic: no await inside)."""
    cool = max((state.cool.get(n, 0.0) for n in plan.names), default=0.0)
    if cool > now:
        kind: Kind = "defer" if cool - now > max_wait_s else "retry"
        state.bump(plan.names, "deferred" if kind == "defer" else "blocked", now)
        return Decision(kind, cool)
    for m in plan.meters:
        state.prune(m.key, now)
    slot = max(now, booked_at) if booked_at is not None else find_slot(state, plan, now)
    if slot - now > max_wait_s:
        _commit_meters(state, plan, slot)
        state.bump(plan.names, "deferred", now)
        return Decision("book", slot)
    for lease in plan.leases:
        held = state.leases.setdefault(lease.key, {})
        for lid in [lid for lid, expiry in held.items() if expiry <= now]:
            del held[lid]
        if len(held) >= lease.limit:
            state.bump(plan.names, "blocked", now)
            return Decision("retry", min(min(held.values()), now + LEASE_POLL_S))
    if booked_at is None:
        _commit_meters(state, plan, slot)
    for lease in plan.leases:
        state.leases[lease.key][lease_id] = slot + lease.ttl_s
    state.bump(plan.names, "sent", now)
    state.count_sent(plan.names, now)
    if slot > now:
        state.bump(plan.names, "waited", now)
        state.bump(plan.names, "wait_ms", now, int((slot - now) * 1000))
    return Decision("go", slot)


def _commit_meters(state: MemoryState, plan: Plan, slot: float) -> None:
    for m in plan.meters:
        book(state.timeline(m.key), slot, slot + m.step_s, m.merge_gap_s)


def release(state: MemoryState, plan: Plan, lease_id: str) -> None:
    for lease in plan.leases:
        state.leases.get(lease.key, {}).pop(lease_id, None)


def cool(state: MemoryState, plan: Plan, until: float, now: float) -> None:
    """Close the plan's cooling keys until `until` (never shortening a longer cooldown)."""
    state.bump(plan.names, "throttled", now)
    for name, cools in zip(plan.names, plan.cools, strict=True):
        if cools:
            state.cool[name] = max(state.cool.get(name, 0.0), until)
            state.bump((name,), "cooldowns", now)
