"""Shared fixtures: a private Redis per test session and graphsim over real HTTP."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from graphworks.embedded_redis import start_redis


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL if given (its database is flushed by every test), else a private redis-server.

    start_redis ties the server's life to this process: stopped here, at exit, or (prctl
    PR_SET_PDEATHSIG) by the kernel when pytest dies, SIGKILL included; nothing is left running.
    """
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    server = start_redis()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def graphsim_server() -> Iterator[object]:
    from graphsim.server import run_in_thread

    server = run_in_thread()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def graphsim(graphsim_server: object) -> object:
    """The session's graphsim with faults, records and data reset for this test."""
    graphsim_server.state.reset()  # type: ignore[attr-defined]
    return graphsim_server
