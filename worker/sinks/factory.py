"""The sink a worker process uses: from settings, built once per process (and event loop)."""

from __future__ import annotations

import asyncio

from graphworks_core.settings import Settings
from worker.sinks.base import Sink
from worker.sinks.callable_sink import CallableSink, resolve
from worker.sinks.http_callback import HttpCallbackSink
from worker.sinks.redis_stream import RedisStreamSink

_override: Sink | None = None
_cache: dict[tuple[object, ...], Sink] = {}


def set_sink(sink: Sink | None) -> None:
    """Use `sink` for every job in this process (embedding, tests); None: back to the settings."""
    global _override
    _override = sink


def sink_for(settings: Settings) -> Sink:
    if _override is not None:
        return _override
    kind = settings.inbound_sink
    if kind == "redis":
        return RedisStreamSink(settings.inbound_stream, settings.inbound_stream_maxlen)
    # An httpx client belongs to the loop it first ran on: one per loop.
    key = (kind, id(asyncio.get_running_loop()), str(settings.inbound_http_url), settings.inbound_callable)
    if key not in _cache:
        if kind == "http":
            assert settings.inbound_http_url is not None and settings.inbound_http_secret is not None
            _cache[key] = HttpCallbackSink(str(settings.inbound_http_url),
                                           settings.inbound_http_secret.get_secret_value(),
                                           timeout_s=settings.inbound_http_timeout_s)  # fmt: skip
        else:
            assert settings.inbound_callable is not None
            _cache[key] = CallableSink(resolve(settings.inbound_callable))
    return _cache[key]
