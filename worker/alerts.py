"""Alerts (DESIGN.md, "Alerts"): thresholds from the `[alerts]` TOML table, evaluated by the workers
once per tick across all of them (worker/ops_loop.py holds the tick lock), active alerts kept in
Redis (keys.ALERTS_ACTIVE) for `/api/queue/alerts`, `graphworks alerts` and `/metrics`, and each
state change (firing, resolved) sent once to ALERT_TEAMS_CHAT_ID and/or ALERT_MAIL_TO as the
suite's own teams_message / mail jobs, with an idempotency key per (alert, state change).

`worker_missing_s` cannot be seen by a worker (the evaluator is one): readers add it
(`active_alerts`) when no worker record is left and no evaluation happened for that long.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from graphworks_core import histogram, keys
from graphworks_core.settings import Settings
from worker.metrics_data import ClusterNumbers, read_numbers, read_snapshots

log = logging.getLogger("graphworks.alerts")

Level = Literal["info", "warning", "critical"]
LEVELS: tuple[Level, ...] = ("info", "warning", "critical")
EVALUATED_AT = f"{keys.ALERTS_ACTIVE}:evaluated_at"
WINDOW_MIN = 10


class Levels(BaseModel):
    """`{warning = N, critical = M}` (any of info, warning, critical)."""

    model_config = ConfigDict(extra="forbid")

    info: float | None = Field(None, ge=0)
    warning: float | None = Field(None, ge=0)
    critical: float | None = Field(None, ge=0)


Threshold = float | Levels | None  # None (or absent): that alert is off


class AlertsConfig(BaseModel):
    """The `[alerts]` table; a plain number fires at the alert's default level (DEFAULT_LEVEL)."""

    model_config = ConfigDict(extra="forbid")

    evaluate_every_s: float = Field(30.0, gt=0, le=3600)
    oldest_queued_age_s: Threshold = 600
    dead_letters_per_10min: Threshold = 50
    throttled_per_min: Threshold = 20
    cooldown_open_s: Threshold = 300
    worker_missing_s: Threshold = 90
    subscription_expiry_s: Threshold = 1800
    backlog: Threshold = 1000
    failure_rate_pct: Threshold = 10
    avg_run_s: Threshold = 60
    dead_letters_total: Threshold = 50

    def levels(self, name: str) -> list[tuple[Level, float]]:
        """(level, threshold) pairs, highest level first."""
        value = getattr(self, name)
        if value is None:
            return []
        if isinstance(value, Levels):
            pairs = [(lv, getattr(value, lv)) for lv in LEVELS if getattr(value, lv) is not None]
        else:
            pairs = [(DEFAULT_LEVEL[name], float(value))]
        return sorted(pairs, key=lambda p: LEVELS.index(p[0]), reverse=True)


DEFAULT_LEVEL: dict[str, Level] = {
    "oldest_queued_age_s": "warning", "dead_letters_per_10min": "warning", "throttled_per_min": "warning",
    "cooldown_open_s": "warning", "worker_missing_s": "critical", "subscription_expiry_s": "warning",
    "backlog": "warning", "failure_rate_pct": "warning", "avg_run_s": "warning", "dead_letters_total": "warning",
}  # fmt: skip
# "below": fires when the value is under its threshold (time left before a subscription expires).
BELOW = frozenset({"subscription_expiry_s"})


class Alert(BaseModel):
    id: str  # name, or name:subject
    name: str
    level: Level
    subject: str | None = None  # the job type or API it is about (bounded), or None
    value: float
    threshold: float
    since: float  # epoch s, when it started firing
    message: str


def _level(config: AlertsConfig, name: str, value: float) -> tuple[Level, float] | None:
    for level, threshold in config.levels(name):
        if (value < threshold) if name in BELOW else (value > threshold):
            return level, threshold
    return None


def evaluate(config: AlertsConfig, n: ClusterNumbers, window: dict[str, dict[str, int]] | None) -> list[Alert]:
    """The alerts that fire on these numbers; `window`: the snapshot from WINDOW_MIN minutes ago
    (None: too little history yet, so the windowed alerts wait)."""
    found: list[tuple[str, str | None, float, str]] = []  # name, subject, value, what
    for t, d in n.depth.items():
        if d.queued:
            found.append(("oldest_queued_age_s", t, d.oldest_queued_age_s, f"{t}'s oldest queued job has waited"))
            found.append(("backlog", t, float(d.queued), f"{t} has queued jobs"))
    found.append(("dead_letters_total", None, float(n.dead_letters_unreviewed), "unreviewed dead letters"))
    for api, untils in n.cooldowns.items():
        found.append(("cooldown_open_s", api, max(untils) - n.now, f"the {api} limiter's cooldown stays open (s)"))
    if n.soonest_subscription_expiry is not None:
        found.append(
            ("subscription_expiry_s", None, n.soonest_subscription_expiry - n.now, "a subscription expires in (s)")
        )
    if window is not None:
        before, graph_before = window.get("stats", {}), window.get("graph", {})
        c = n.counters
        dead = c.get("dead_lettered", 0) - before.get("dead_lettered", 0)
        done = c.get("completed", 0) - before.get("completed", 0)
        found.append(("dead_letters_per_10min", None, float(dead), "jobs dead-lettered in 10 min"))
        if dead + done > 0:
            found.append(("failure_rate_pct", None, 100.0 * dead / (dead + done), "% of finished jobs dead-lettered"))
        minutes = max(1.0, float(window.get("minutes", {}).get("span", WINDOW_MIN)))
        for field, count in n.graph.items():
            if field.startswith("throttled:"):
                api = field.split(":", 1)[1]
                per_min = (count - graph_before.get(field, 0)) / minutes
                found.append(("throttled_per_min", api, per_min, f"429s a minute on {api}"))
        for t, h in n.histograms()["run"].items():
            earlier = _hist_from(before, "run", t)
            recent = h.minus(earlier)
            if recent.count > 0:
                found.append(("avg_run_s", t, recent.sum_s / recent.count, f"{t}'s mean run time (s)"))
    out = []
    for name, subject, measured, what in found:
        hit = _level(config, name, measured)
        if hit is not None:
            level, threshold = hit
            aid = f"{name}:{subject}" if subject else name
            cmp = "<" if name in BELOW else ">"
            out.append(
                Alert(
                    id=aid,
                    name=name,
                    level=level,
                    subject=subject,
                    value=round(measured, 3),
                    threshold=threshold,
                    since=n.now,
                    message=f"{what}: {measured:.3g} {cmp} {threshold:g}",
                )
            )
    return out


def _hist_from(counters: dict[str, int], kind: str, job_type: str) -> histogram.Histogram | None:
    return histogram.read(counters)[kind].get(job_type)


async def window_snapshot(redis: aioredis.Redis, now: float) -> dict[str, dict[str, int]] | None:
    """The oldest snapshot within the last WINDOW_MIN minutes (None if there is none)."""
    minute = int(now // 60)
    minutes = list(range(minute - WINDOW_MIN, minute + 1))
    snaps = await read_snapshots(redis, minutes)
    for m in minutes:
        if m in snaps:
            snap = snaps[m]
            snap["minutes"] = {"span": max(1, round((now - m * 60) / 60))}
            return snap
    return None


async def stored_alerts(redis: aioredis.Redis) -> dict[str, Alert]:
    raw = await redis.hgetall(keys.ALERTS_ACTIVE)  # type: ignore[misc]
    return {(k.decode() if isinstance(k, bytes) else k): Alert.model_validate_json(v) for k, v in raw.items()}


async def active_alerts(
    redis: aioredis.Redis, config: AlertsConfig, now: float, numbers: ClusterNumbers | None = None
) -> list[Alert]:
    """What `/api/queue/alerts`, `graphworks alerts` and `/metrics` show: the stored alerts, plus
    worker_missing_s when no worker is left to evaluate (computed here, at read time)."""
    alerts = list((await stored_alerts(redis)).values())
    numbers = numbers or await read_numbers(redis, now)
    if numbers.workers == 0:
        raw = await redis.get(EVALUATED_AT)
        last = numbers.workers_last_seen_at or (float(raw) if raw is not None else None)
        missing = now - last if last is not None else float("inf")
        hit = _level(config, "worker_missing_s", missing)
        if hit is not None:
            shown = missing if missing != float("inf") else -1.0
            alerts.append(
                Alert(
                    id="worker_missing_s",
                    name="worker_missing_s",
                    level=hit[0],
                    value=shown,
                    threshold=hit[1],
                    since=now if last is None else last,
                    message=f"no worker seen for {shown:.0f} s (-1: never)",
                )
            )
    return sorted(alerts, key=lambda a: (-LEVELS.index(a.level), a.id))


Enqueue = Callable[[str, dict[str, Any], str], Awaitable[object]]  # (job type, payload, idempotency key)


class AlertNotifier:
    """Sends a state change as a teams_message and/or a mail job, once (idempotency key)."""

    def __init__(self, settings: Settings, enqueue: Enqueue) -> None:
        self.settings = settings
        self.enqueue = enqueue  # async (job_type, payload, idempotency_key) -> job id

    async def send(self, alert: Alert, state: Literal["firing", "resolved"]) -> None:
        s = self.settings
        head = f"[graphworks] {state.upper()} {alert.level} {alert.id}"
        text = f"{head}: {alert.message}" if state == "firing" else f"{head} (was: {alert.message})"
        idem = f"alert:{alert.id}:{alert.level}:{int(alert.since * 1000)}:{state}"
        if s.alert_teams_chat_id:
            payload: dict[str, Any] = {"chat_id": s.alert_teams_chat_id, "content": text}
            if s.alert_teams_sender:
                payload["sender"] = s.alert_teams_sender
            await self.enqueue("teams_message", payload, f"{idem}:teams")
        if s.alert_mail_to and s.alert_mail_from:
            mail: dict[str, Any] = {
                "mailbox": s.alert_mail_from,
                "to": [a.strip() for a in s.alert_mail_to.split(",") if a.strip()],
                "subject": head,
                "body": text,
            }
            await self.enqueue("mail", mail, f"{idem}:mail")


async def evaluate_and_store(
    redis: aioredis.Redis, config: AlertsConfig, now: float, notifier: AlertNotifier | None
) -> list[Alert]:
    """One evaluation (the caller holds this tick's lock): fire the new, resolve the gone, notify each once."""
    numbers = await read_numbers(redis, now)
    window = await window_snapshot(redis, now)
    found = {a.id: a for a in evaluate(config, numbers, window)}
    before = await stored_alerts(redis)
    firing: list[Alert] = []
    resolved: list[Alert] = []
    keep: dict[str, Alert] = {}
    for aid, alert in found.items():
        old = before.get(aid)
        if old is not None and old.level == alert.level:
            keep[aid] = alert.model_copy(update={"since": old.since})
        else:
            keep[aid] = alert
            firing.append(alert)
    windowless = {"dead_letters_per_10min", "failure_rate_pct", "throttled_per_min", "avg_run_s"}
    for aid, old in before.items():
        if aid not in found and not (window is None and old.name in windowless):
            resolved.append(old)
        elif aid not in found:
            keep[aid] = old  # no window to judge it by: leave it as it was
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.ALERTS_ACTIVE)
        if keep:
            pipe.hset(keys.ALERTS_ACTIVE, mapping={aid: a.model_dump_json() for aid, a in keep.items()})
        pipe.set(EVALUATED_AT, repr(now))
        await pipe.execute()
    for alert in firing:
        log.warning("alert firing: %s %s", alert.level, alert.message)
    for alert in resolved:
        log.info("alert resolved: %s", alert.id)
    if notifier is not None:
        for alert in firing:
            await notifier.send(alert, "firing")
        for alert in resolved:
            await notifier.send(alert, "resolved")
    return list(keep.values())


def alerts_json(alerts: list[Alert]) -> str:
    return json.dumps([a.model_dump() for a in alerts])
