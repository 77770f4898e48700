"""Worker start-up: the HTTP stack is warmed against loopback only, and the startup heap
is frozen out of the collector's full passes."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from graphworks_core.startup_heap import freeze_startup_heap
from worker.graph import warmup


async def test_http_warm_up_sends_one_request_to_a_loopback_server_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, bytes]] = []
    real_start = asyncio.start_server

    async def recording_start(handler: Any, host: str, port: int) -> asyncio.Server:
        async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n")
            seen.append((host, head))
            await handler(reader, writer)

        return await real_start(wrapped, host, port)

    monkeypatch.setattr(asyncio, "start_server", recording_start)
    took = await warmup.warm_http_stack()
    assert seen == [("127.0.0.1", b"GET /warm-up HTTP/1.1\r\n")]
    assert took > 0


async def test_http_warm_up_failing_never_stops_the_worker(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    async def refused(*args: Any, **kwargs: Any) -> asyncio.Server:
        raise OSError("no loopback")

    monkeypatch.setattr(asyncio, "start_server", refused)
    await warmup.warm_http_stack()
    assert "HTTP warm-up failed (OSError: no loopback)" in caplog.text


def test_freeze_moves_the_startup_heap_out_of_full_collections() -> None:
    startup_object: list[object] = []
    try:
        assert freeze_startup_heap() > 1000
        assert not any(o is startup_object for o in gc.get_objects())  # no full pass walks it any more
    finally:
        gc.unfreeze()
