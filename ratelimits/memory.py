"""The in-process backend: the algorithm on plain dicts. Atomic because nothing in it awaits.

For one worker process and tests. It does not use aiolimiter: aiolimiter's leaky bucket admits a
full bucket at once (up to 2N in one window), reads only the event loop's clock, and cannot
book a slot or check several keys together, so it could not pass the tests the Redis backend does.
"""

from __future__ import annotations

from ratelimits import algorithm
from ratelimits.algorithm import Decision, MemoryState
from ratelimits.backend import COUNTERS, KeyStats, rate_from
from ratelimits.plan import Plan


class MemoryBackend:
    def __init__(self) -> None:
        self.state = MemoryState()

    async def acquire(
        self, plan: Plan, now: float, max_wait_s: float, booked_at: float | None, lease_id: str
    ) -> Decision:
        return algorithm.acquire(self.state, plan, now, max_wait_s, booked_at, lease_id)

    async def release(self, plan: Plan, lease_id: str) -> None:
        algorithm.release(self.state, plan, lease_id)

    async def cool(self, plan: Plan, until: float, now: float) -> None:
        algorithm.cool(self.state, plan, until, now)

    async def snapshot(self, now: float, limit: int = 100) -> list[KeyStats]:
        recent = sorted(self.state.stats.items(), key=lambda kv: kv[1].last_seen, reverse=True)[:limit]
        out = []
        for name, c in recent:
            cooling = self.state.cool.get(name, 0.0)
            held = self.state.leases.get(name, {})
            out.append(
                KeyStats(
                    key=name,
                    rate_per_s=rate_from(c.bucket, c.in_bucket, c.in_previous, now),
                    cooling_until=cooling if cooling > now else None,
                    in_flight=sum(1 for e in held.values() if e > now),
                    **{f: c.counts.get(f, 0) for f in COUNTERS},
                )
            )
        return out
