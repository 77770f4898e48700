"""A sink that calls Python code: `fn(items: list[dict]) -> None`, sync or async.

Named in settings as ``INBOUND_CALLABLE=package.module:function``; an exception it raises makes
the job retry (error class unknown: 3 tries).
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable, Sequence
from typing import Any

from graphworks_core.errors import ConfigError
from worker.sinks.base import SinkRecord


def resolve(path: str) -> Callable[[list[dict[str, Any]]], Any]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"INBOUND_CALLABLE: {path!r} is not 'package.module:function'")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"INBOUND_CALLABLE: cannot load {path!r}: {exc}") from exc
    if not callable(fn):
        raise ConfigError(f"INBOUND_CALLABLE: {path!r} is not callable")
    return fn  # type: ignore[no-any-return]


class CallableSink:
    name = "callable"

    def __init__(self, fn: Callable[[list[dict[str, Any]]], Any]) -> None:
        self.fn = fn

    async def send(self, records: Sequence[SinkRecord]) -> None:
        result = self.fn([json.loads(r.data) for r in records])
        if inspect.isawaitable(result):
            await result
