"""A notification-driven calendar sync names the same window all day, so it continues the day's
delta round instead of starting a full one (processors/sync_targets.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.subscriptions.jobs import sync_payload
from worker.subscriptions.routing import SyncRoute


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_every_calendar_sync_of_a_day_names_the_same_window() -> None:
    route = SyncRoute(kind="calendar", owner="u-1")
    morning = sync_payload(route, None, _at("2026-11-22T00:00:01"))
    evening = sync_payload(route, None, _at("2026-11-22T23:59:59"))
    tomorrow = sync_payload(route, None, _at("2026-11-23T00:00:00"))
    assert (morning.start, morning.end) == (evening.start, evening.end)
    assert morning.start == datetime(2026, 10, 23, tzinfo=UTC)  # 30 days back from the day's start
    assert (tomorrow.start, tomorrow.end) != (morning.start, morning.end)


def test_other_syncs_have_no_window() -> None:
    contacts = sync_payload(SyncRoute(kind="contacts", owner="u-1"), None, _at("2026-11-22T12:00:00"))
    assert (contacts.start, contacts.end) == (None, None)
