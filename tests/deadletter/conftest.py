"""Fixtures for the dead-letter tests: one `store` fixture over every backend, and an entry factory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from graphworks_core.errors import ErrorClass
from worker.deadletter.memory_store import MemoryDeadLetterStore
from worker.deadletter.models import DeadLetterEntry
from worker.deadletter.redis_store import RedisDeadLetterStore
from worker.deadletter.store import DeadLetterStore

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

MakeEntry = Callable[..., DeadLetterEntry]


@pytest.fixture(params=["redis", "memory"])
def store(request: pytest.FixtureRequest) -> DeadLetterStore:
    """Each backend in turn; the Redis one is only started when its parameter runs."""
    if request.param == "redis":
        return RedisDeadLetterStore(request.getfixturevalue("redis"))
    return MemoryDeadLetterStore()


@pytest.fixture
def t0() -> datetime:
    """The time `make_entry` counts minutes from."""
    return T0


@pytest.fixture
def make_entry() -> MakeEntry:
    """Build an entry whose last failure is T0 + `minutes`; keyword overrides set any field."""

    def build(entry_id: str, minutes: float = 0, **overrides: Any) -> DeadLetterEntry:
        at = T0 + timedelta(minutes=minutes)
        fields: dict[str, Any] = {
            "id": entry_id,
            "job_id": entry_id,
            "type": "mail.send",
            "payload": {"to": "a@example.com"},
            "error_class": ErrorClass.UNAVAILABLE,
            "reason": "retries exhausted",
            "first_failure_at": at - timedelta(minutes=1),
            "last_failure_at": at,
            "dead_lettered_at": at,
        }
        fields.update(overrides)
        return DeadLetterEntry(**fields)

    return build
