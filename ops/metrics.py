"""`GET /metrics` (Prometheus text), `GET /api/queue/metrics` (JSON, per minute for the last hour)
and `GET /api/queue/alerts`: cluster-wide, from Redis, in a bounded number of round trips whatever
the number of jobs (worker/metrics_data.py: one pipeline, a second for worker records and limiter
cooldowns, one more for the active alerts). Nothing is kept in this process: any `serve` answers
the same, and no restart resets a counter. Labels are bounded: job type, outcome, state, error
class, API name, status class, alert name and level; never a tenant, mailbox or chat.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable

import redis.asyncio as aioredis
from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel

from graphworks_core import histogram
from graphworks_core.clock import Clock
from worker.alerts import Alert, AlertsConfig, active_alerts
from worker.metrics_data import ClusterNumbers, read_numbers, read_snapshots

OUTCOMES = ("completed", "retried", "dead_lettered", "deferred")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def families(n: ClusterNumbers, alerts: list[Alert]) -> list[Metric]:
    """The exposition: every family, from one read of the numbers."""
    jobs = CounterMetricFamily(
        "graphworks_jobs", "jobs ended or retried, by type and outcome", labels=["type", "outcome"]
    )
    for field, value in sorted(n.counters.items()):
        parts = field.split(":")
        if len(parts) == 3 and parts[1] == "type" and parts[0] in OUTCOMES:
            jobs.add_metric([parts[2], parts[0]], value)
    out: list[Metric] = [jobs]
    hists = n.histograms()
    for kind, name, what in (
        ("run", "graphworks_job_duration_seconds", "a job run's time, start to outcome"),
        ("wait", "graphworks_job_wait_seconds", "a job's wait, due (enqueued) to start"),
    ):
        fam = HistogramMetricFamily(name, what, labels=["type"])
        for job_type, h in sorted(hists[kind].items()):
            buckets = [("+Inf" if b == float("inf") else _le(b), c) for b, c in h.cumulative()]
            fam.add_metric([job_type], buckets, sum_value=h.sum_s)
        out.append(fam)
    depth = GaugeMetricFamily("graphworks_queue_depth", "jobs waiting, by type and state", labels=["type", "state"])
    oldest = GaugeMetricFamily(
        "graphworks_queue_oldest_age_seconds", "the age of a type's oldest queued job", labels=["type"]
    )
    ready = GaugeMetricFamily(
        "graphworks_queue_ready", "jobs due now that no worker runs, parked ones left out", labels=["type"]
    )
    for job_type, d in sorted(n.depth.items()):
        depth.add_metric([job_type, "queued"], d.queued)
        depth.add_metric([job_type, "scheduled"], d.scheduled)
        oldest.add_metric([job_type], d.oldest_queued_age_s)
        ready.add_metric([job_type], d.ready)
    out += [depth, oldest, ready]
    dead = GaugeMetricFamily(
        "graphworks_dead_letter_entries", "entries in the dead-letter store", labels=["type", "error_class"]
    )
    for (job_type, error_class), count in sorted(n.dead_letters.items()):
        dead.add_metric([job_type, error_class], count)
    out.append(dead)
    requests = CounterMetricFamily(
        "graphworks_graph_requests", "Graph requests sent, by API and status class", labels=["api", "status_class"]
    )
    throttled = CounterMetricFamily(
        "graphworks_graph_throttled", "Graph 429s (and 503s with Retry-After)", labels=["api"]
    )
    for field, value in sorted(n.graph.items()):
        parts = field.split(":")
        if parts[0] == "req" and len(parts) == 3:
            requests.add_metric([parts[1], parts[2]], value)
        elif parts[0] == "throttled" and len(parts) == 2:
            throttled.add_metric([parts[1]], value)
    cooldowns = GaugeMetricFamily("graphworks_limiter_cooldowns", "limiter keys cooling after a 429", labels=["api"])
    for api, untils in sorted(n.cooldowns.items()):
        cooldowns.add_metric([api], len(untils))
    hooks = CounterMetricFamily(
        "graphworks_webhook_notifications", "webhook deliveries and items, by outcome", labels=["outcome"]
    )
    for outcome, value in sorted(n.webhooks.items()):
        hooks.add_metric([outcome], value)
    workers = GaugeMetricFamily("graphworks_workers", "workers seen within a lease", value=n.workers)
    auth_failures = CounterMetricFamily(
        "graphworks_api_auth_failures", "API requests with a missing or wrong token", value=n.auth.get("failures", 0)
    )
    auth_blocked = CounterMetricFamily(
        "graphworks_api_auth_blocked",
        "API requests refused 429 by the brake on failed token attempts",
        value=n.auth.get("blocked", 0),
    )
    out += [requests, throttled, cooldowns, hooks, workers, auth_failures, auth_blocked]
    if n.soonest_subscription_expiry is not None:
        out.append(
            GaugeMetricFamily(
                "graphworks_subscription_expiry_seconds",
                "time until the soonest Graph subscription expires",
                value=n.soonest_subscription_expiry - n.now,
            )
        )
    active = GaugeMetricFamily("graphworks_alerts_active", "active alerts (1 each)", labels=["name", "level"])
    counted: dict[tuple[str, str], int] = {}
    for a in alerts:
        counted[(a.name, a.level)] = counted.get((a.name, a.level), 0) + 1
    for (name, level), count in sorted(counted.items()):
        active.add_metric([name, level], count)
    out.append(active)
    return out


def _le(bound: float) -> str:
    return repr(float(bound))


class _Once(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return iter(self.metrics)


async def scrape(redis: aioredis.Redis, config: AlertsConfig, now: float) -> bytes:
    """One exposition: the numbers read once, rendered by prometheus-client."""
    numbers = await read_numbers(redis, now)
    alerts = await active_alerts(redis, config, now, numbers)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Once(families(numbers, alerts)))
    return generate_latest(registry)


class MinuteRow(BaseModel):
    minute: int  # epoch minute (epoch s // 60)
    at: float  # its start, epoch s
    completed: int
    retried: int
    dead_lettered: int
    run_p50_s: float | None
    run_p95_s: float | None
    wait_p50_s: float | None
    wait_p95_s: float | None


class QueueMetrics(BaseModel):
    """Per type, per minute for the last hour (from the workers' minute snapshots of the counters:
    a minute with no snapshot on either side is left out). Quantiles are estimated from the
    histogram buckets, like PromQL's histogram_quantile."""

    minutes: int
    types: dict[str, list[MinuteRow]]


def minute_rows(
    snaps: dict[int, dict[str, dict[str, int]]], live: dict[str, int], now: float
) -> dict[str, list[MinuteRow]]:
    current = int(now // 60)
    points = {m: s.get("stats", {}) for m, s in snaps.items()}
    points[current + 1] = live  # the minute in progress ends "now"
    ordered = sorted(points)
    rows: dict[str, list[MinuteRow]] = {}
    for a, b in itertools.pairwise(ordered):
        if b != a + 1:
            continue
        before, after = points[a], points[b]
        h_before, h_after = histogram.read(before), histogram.read(after)
        types = {f.split(":")[2] for f in after if f.count(":") == 2 and f.split(":")[1] == "type"}
        for t in sorted(types):

            def delta(kind: str, t: str = t, after: dict[str, int] = after, before: dict[str, int] = before) -> int:
                return after.get(f"{kind}:type:{t}", 0) - before.get(f"{kind}:type:{t}", 0)

            run = _window(h_after["run"].get(t), h_before["run"].get(t))
            wait = _window(h_after["wait"].get(t), h_before["wait"].get(t))
            rows.setdefault(t, []).append(
                MinuteRow(
                    minute=a,
                    at=a * 60.0,
                    completed=delta("completed"),
                    retried=delta("retried"),
                    dead_lettered=delta("dead_lettered"),
                    run_p50_s=run.quantile(0.5) if run else None,
                    run_p95_s=run.quantile(0.95) if run else None,
                    wait_p50_s=wait.quantile(0.5) if wait else None,
                    wait_p95_s=wait.quantile(0.95) if wait else None,
                )
            )
    return rows


def _window(after: histogram.Histogram | None, before: histogram.Histogram | None) -> histogram.Histogram | None:
    return after.minus(before) if after is not None else None


def metrics_router(redis: aioredis.Redis, config: AlertsConfig, clock: Clock) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/metrics", response_class=Response, operation_id="prometheus_metrics")
    async def metrics() -> Response:
        """Prometheus text exposition, cluster-wide (viewer or admin token)."""
        body = await asyncio.wait_for(scrape(redis, config, clock.now()), timeout=10)
        return Response(body, media_type=CONTENT_TYPE)

    @router.get("/api/queue/metrics", response_model=QueueMetrics, operation_id="queue_metrics")
    async def queue_metrics() -> QueueMetrics:
        """Per type, per minute for the last hour: completed, retried, dead-lettered, p50/p95 run and wait."""
        now = clock.now()
        current = int(now // 60)
        snaps = await read_snapshots(redis, list(range(current - 60, current + 1)))
        live = (await read_numbers(redis, now)).counters
        return QueueMetrics(minutes=60, types=minute_rows(snaps, live, now))

    @router.get("/api/queue/alerts", response_model=list[Alert], operation_id="queue_alerts")
    async def alerts() -> list[Alert]:
        """The active alerts, most severe first."""
        return await active_alerts(redis, config, clock.now())

    return router
