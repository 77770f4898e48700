"""Run-time and wait-time histograms per job type, kept as counters in the stats hash (keys.STATS).

A job's run adds 1 to the one bucket its time falls in and its time in microseconds to the sum,
in the same Redis call that counts its outcome (worker/lua/outcome.lua), so every worker's runs
land in one cluster-wide histogram that no restart resets. Buckets are stored non-cumulative
(one field per run); readers add them up into Prometheus' cumulative `le` buckets.

Fields have four `:`-separated parts, so the stats snapshot's `kind:type|class:name` parsing
(worker/stats.py) never mistakes them for counters: `h:run:b3:mail`, `h:run:sum:mail` (µs).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence

KINDS = ("run", "wait")
# Seconds; the last finite bucket is an hour (a job waiting behind a paused queue or a backlog).
BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
SUM_SEP = "\t"


def bucket_index(seconds: float) -> int:
    """The first bucket whose upper bound holds `seconds`; len(BUCKETS) is +Inf."""
    return bisect.bisect_left(BUCKETS, seconds)


def fields(job_type: str, run_s: float, wait_s: float) -> list[str]:
    """The increments one run adds: `field` by 1, `field<TAB>N` by N."""
    out: list[str] = []
    for kind, value in (("run", run_s), ("wait", wait_s)):
        value = max(0.0, value)
        out.append(f"h:{kind}:b{bucket_index(value)}:{job_type}")
        out.append(f"h:{kind}:sum:{job_type}{SUM_SEP}{round(value * 1_000_000)}")
    return out


class Histogram:
    """One type's histogram of one kind, read back from the hash."""

    def __init__(self, counts: Sequence[int], sum_s: float) -> None:
        self.counts = list(counts)  # per bucket, non-cumulative; last is +Inf
        self.sum_s = sum_s

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, cumulative count) pairs ending with +Inf, as Prometheus exposes them."""
        total, out = 0, []
        for bound, n in zip((*BUCKETS, float("inf")), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out

    def minus(self, earlier: Histogram | None) -> Histogram:
        if earlier is None:
            return self
        return Histogram([a - b for a, b in zip(self.counts, earlier.counts, strict=True)], self.sum_s - earlier.sum_s)

    def quantile(self, q: float) -> float | None:
        """Like PromQL's histogram_quantile: linear within the bucket; None without observations."""
        total = self.count
        if total <= 0:
            return None
        rank, seen, lower = q * total, 0, 0.0
        for bound, n in zip((*BUCKETS, float("inf")), self.counts, strict=True):
            if n > 0 and seen + n >= rank:
                if bound == float("inf"):
                    return BUCKETS[-1]
                return lower + (bound - lower) * (rank - seen) / n
            seen += n
            lower = bound
        return BUCKETS[-1]


def read(counters: Mapping[str, int]) -> dict[str, dict[str, Histogram]]:
    """kind -> type -> Histogram, from the stats hash's fields."""
    counts: dict[tuple[str, str], list[int]] = {}
    sums: dict[tuple[str, str], int] = {}
    for field, value in counters.items():
        if not field.startswith("h:"):
            continue
        parts = field.split(":")
        if len(parts) != 4 or parts[1] not in KINDS:
            continue
        key = (parts[1], parts[3])
        if parts[2] == "sum":
            sums[key] = value
        elif parts[2].startswith("b") and parts[2][1:].isdigit():
            i = int(parts[2][1:])
            if i <= len(BUCKETS):
                counts.setdefault(key, [0] * (len(BUCKETS) + 1))[i] += value
    out: dict[str, dict[str, Histogram]] = {kind: {} for kind in KINDS}
    for key in set(counts) | set(sums):
        kind, job_type = key
        out[kind][job_type] = Histogram(counts.get(key, [0] * (len(BUCKETS) + 1)), sums.get(key, 0) / 1_000_000)
    return out
