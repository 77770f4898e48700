"""A 40 MB upload goes through in 5 MiB chunks with the worker's memory growing by less than two chunks.

graphsim runs in a child process here, so what tracemalloc sees is the worker's side only.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from graphworks_core.clock import FakeClock
from graphworks_core.envelope import Envelope
from graphworks_core.payloads import Attachment
from graphworks_core.settings import load_settings
from processors.attachment import run_attachment
from tests.processors.conftest import make_file
from worker.context import JobContext
from worker.graph.auth import StaticTokenProvider
from worker.graph.client import GraphClient

MB = 1024 * 1024


@pytest.fixture(scope="module")
def graphsim_process() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphworks", "graphsim", "--port", "0"], stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"(http://\S+/v1\.0)", line)
        assert match, f"graphsim did not start: {line!r}"
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(10)


async def test_40mb_upload_memory_stays_under_two_chunks(
    graphsim_process: str, redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    size = 40 * MB
    src = make_file(tmp_path / "forty.bin", size)
    settings = load_settings(redis_url=redis_url, graph_base_url=graphsim_process, graph_static_token="t")
    chunk = settings.attachment_chunk_bytes
    assert chunk == 5 * MB
    graph = GraphClient(settings.graph_base, StaticTokenProvider("t"))
    env = Envelope(type="attachment", payload={})
    ctx = JobContext(graph, redis, settings, FakeClock(), env)
    payload = Attachment(operation="upload", drive_id="d1", item_path="big/forty.bin", local_path=str(src))
    # Warm the connection pool and lazy imports with a small upload first.
    small = make_file(tmp_path / "small.bin", 10)
    await run_attachment(ctx, Attachment(operation="upload", drive_id="d1", item_path="s", local_path=str(small)))

    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        result = await run_attachment(ctx, payload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await graph.close()
    grew = peak - base
    print(f"40 MB upload: {result.chunks} chunks of {chunk} bytes, traced peak growth {grew / MB:.1f} MiB")
    assert result.chunks == 8 and result.bytes == size
    assert grew < 2 * chunk, f"memory grew {grew} bytes, over two {chunk}-byte chunks"
    async with httpx.AsyncClient() as http:
        item = await http.get(
            f"{graphsim_process}/drives/d1/root:/big/forty.bin:", headers={"Authorization": "Bearer t"}
        )
    assert item.json()["size"] == size
