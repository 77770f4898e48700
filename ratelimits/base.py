"""The interface the runner calls before a Graph request: wait for a permit for (api, scope).

Waiting here never consumes an attempt. The real limiters (Redis and in-process backends with
Graph's limits as data) implement this protocol; NoLimit lets every call through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class Limiter(Protocol):
    def acquire(self, api: str, scope: str) -> AbstractAsyncContextManager[None]:
        """Hold a permit for one call to `api` on `scope` for the duration of the block."""


class NoLimit:
    """Every call may go at once."""

    @asynccontextmanager
    async def acquire(self, api: str, scope: str) -> AsyncIterator[None]:
        yield
