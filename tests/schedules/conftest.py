"""A ScheduleStore on a real Redis and a FakeClock that starts on a round time (a Friday, 08:00 UTC)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from graphworks_core.clock import FakeClock
from graphworks_core.settings import Settings, load_settings
from worker.queue import JobQueue
from worker.schedules import ScheduleStore

T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC (09:00 in Europe/Berlin); a multiple of 300 s

MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "report", "body": "weekly"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return load_settings(redis_url=redis_url)


def make_store(redis: aioredis.Redis, settings: Settings, clock: FakeClock) -> ScheduleStore:
    return ScheduleStore(redis, JobQueue.from_settings(settings, redis, clock), settings, clock)


@pytest.fixture
def store(redis: aioredis.Redis, settings: Settings, clock: FakeClock) -> ScheduleStore:
    return make_store(redis, settings, clock)
