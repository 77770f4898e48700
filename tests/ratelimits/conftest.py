"""Fixtures for the limiter tests: one `backend` fixture over every backend, a fake clock that the
limiter's waits move (never a real sleep), and a limiter factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from graphworks_core.clock import FakeClock
from ratelimits.backend import Backend
from ratelimits.config import ApiOverride, LimitsConfig
from ratelimits.limiter import GraphLimiter
from ratelimits.memory import MemoryBackend
from ratelimits.redis_backend import RedisBackend
from ratelimits.waiting import AutoAdvanceSleeper

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
BASE = "https://graph.microsoft.com/v1.0"

MakeLimiter = Callable[..., GraphLimiter]


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend in turn; the Redis one is only started when its parameter runs."""
    if request.param == "redis":
        return RedisBackend(request.getfixturevalue("redis"))
    return MemoryBackend()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def make_limiter(backend: Backend, clock: FakeClock) -> MakeLimiter:
    """A limiter on `backend` whose waits jump the fake clock; `apis` override the defaults.

    Headroom is 1 unless given, so the expected times are the documented limits' own.
    """

    def build(apis: dict[str, dict[str, Any]] | None = None, **fields: Any) -> GraphLimiter:
        fields.setdefault("headroom", 1.0)
        config = LimitsConfig(apis={k: ApiOverride(**v) for k, v in (apis or {}).items()}, **fields)
        return GraphLimiter(
            backend, config, tenant="contoso", base_url=BASE, clock=clock, sleeper=AutoAdvanceSleeper(clock)
        )

    return build
