"""Fixtures for the outbound, attachment and credential processors: a pipeline with tmp dirs, small chunks."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from graphsim.server import SimServer
from graphworks_core.envelope import Envelope
from tests.integration.conftest import Pipeline, eventually, make_settings
from tests.integration.conftest import running_pipeline as integration_pipeline
from worker.queue import Scheduled

KIB = 1024
CHUNK = 327_680  # one 320 KiB fragment: small files still take several chunks


def make_file(path: Path, size: int) -> Path:
    """A file of `size` pseudo-random bytes (distinct per offset, so a misplaced chunk shows)."""
    block = os.urandom(64 * KIB)
    with path.open("wb") as out:
        left = size
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= len(block)
    return path


@contextlib.asynccontextmanager
async def running_pipeline(
    redis: aioredis.Redis, redis_url: str, sim: SimServer, **extra: object
) -> AsyncIterator[Pipeline]:
    async with integration_pipeline(redis, sim, make_settings(redis_url, sim, **extra)) as pipe:
        yield pipe


@pytest.fixture
async def files_pipeline(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    async with running_pipeline(
        redis,
        redis_url,
        graphsim,
        attachment_download_dir=tmp_path / "downloads",
        attachment_chunk_bytes=CHUNK,
        attachment_simple_upload_max_bytes=CHUNK,
        mail_upload_chunk_bytes=1024 * KIB,
    ) as pipe:
        yield pipe


async def enqueue_raw(pipe: Pipeline, job_type: str, payload: dict[str, object]) -> str:
    """Store a job as a buggy producer would, skipping the client's validation (the runner must cope)."""
    env = Envelope(type=job_type, payload=payload)
    await pipe.runner.queue.put([Scheduled(env, due_at=pipe.clock.now())])
    return env.id


async def wait_done(pipe: Pipeline, n: int = 1) -> None:
    async def done() -> bool:
        snap = await pipe.stats.snapshot()
        return snap.completed + snap.dead_lettered >= n

    await eventually(done, what=f"{n} job(s) to finish")


__all__ = ["CHUNK", "enqueue_raw", "eventually", "make_file", "running_pipeline", "wait_done"]
