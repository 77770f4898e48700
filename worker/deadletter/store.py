"""The dead-letter store protocol: a few operations, implemented on Redis and in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from worker.deadletter.models import DeadLetterEntry, DeadLetterFilter, DeadLetterPage


class DeadLetterStore(Protocol):
    async def put(self, entry: DeadLetterEntry) -> None:
        """Store (or overwrite, same id) an entry; secrets are redacted before storing."""

    async def get(self, entry_id: str) -> DeadLetterEntry | None: ...

    async def page(self, flt: DeadLetterFilter | None = None, *, limit: int = 50, offset: int = 0) -> DeadLetterPage:
        """Newest last_failure_at first."""

    def scan(self, flt: DeadLetterFilter | None = None) -> AsyncIterator[DeadLetterEntry]:
        """Every matching entry, newest first, without loading them all at once."""

    async def remove(self, entry_id: str) -> DeadLetterEntry | None:
        """Delete and return the entry (redrive uses this); None if it was not there."""

    async def review(self, entry_id: str, note: str | None, *, reviewed: bool = True) -> DeadLetterEntry | None: ...

    async def purge(self, flt: DeadLetterFilter | None = None) -> int:
        """Delete matching entries; returns how many."""

    async def count(self) -> int: ...
