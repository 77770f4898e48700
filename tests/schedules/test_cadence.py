"""When a schedule ticks (pure: ScheduleSpec's tick arithmetic, no Redis)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from tests.schedules.conftest import MAIL, T0
from worker.schedules import ScheduleSpec, idempotency_key

BERLIN = ZoneInfo("Europe/Berlin")


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def every(seconds: float) -> ScheduleSpec:
    return ScheduleSpec.parse({"name": "e", "every_s": seconds, "type": "mail", "payload": MAIL})


def cron(expr: str, tz: str = "UTC") -> ScheduleSpec:
    return ScheduleSpec.parse({"name": "c", "cron": expr, "timezone": tz, "type": "mail", "payload": MAIL})


def test_every_is_anchored_at_multiples_since_the_epoch() -> None:
    t0 = int(T0 * 1000)
    assert (every(7).latest_tick_ms(t0), every(7).next_tick_ms(t0)) == (t0 - t0 % 7000, t0 - t0 % 7000 + 7000)
    assert every(10).latest_tick_ms(t0) == t0 and every(10).next_tick_ms(t0) == t0 + 10_000, "on a tick: it is due"
    assert every(0.25).next_tick_ms(t0 + 1) == t0 + 250


def test_cron_on_a_tick_is_due_and_the_next_is_after_it() -> None:
    spec = cron("*/5 * * * *")
    t0 = int(T0 * 1000)
    assert (spec.latest_tick_ms(t0), spec.next_tick_ms(t0)) == (t0, t0 + 300_000)
    assert (spec.latest_tick_ms(t0 - 1), spec.next_tick_ms(t0 - 1)) == (t0 - 300_000, t0)


def test_cron_across_daylight_saving_changes_in_its_zone() -> None:
    spec = cron("30 2 * * *", "Europe/Berlin")
    # Spring forward (02:00 -> 03:00): the skipped 02:30 runs once, at the change.
    start = ms(datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN))
    assert spec.next_tick_ms(start) == ms(datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN))
    # Fall back (03:00 -> 02:00): 02:30 happens twice, and each is its own tick (croniter's reading).
    first = spec.next_tick_ms(ms(datetime(2026, 10, 25, 0, 0, tzinfo=BERLIN)))
    second = spec.next_tick_ms(first)
    assert second - first == 3_600_000
    assert spec.latest_tick_ms(second + 300) == second


def test_a_ticks_idempotency_key_names_the_schedule_and_the_tick() -> None:
    assert idempotency_key("nightly", 1_800_000_000_000) == "schedule:nightly:1800000000"
    assert idempotency_key("fast", 1_800_000_000_250) == "schedule:fast:1800000000.250"
