"""The dead-letter store protocol: a few operations, implemented on Redis and in process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from worker.deadletter.models import (
    DeadLetterCursorPage,
    DeadLetterEntry,
    DeadLetterFilter,
    DeadLetterGroup,
    DeadLetterPage,
)


class DeadLetterStore(Protocol):
    async def put(self, entry: DeadLetterEntry) -> None:
        """Store (or overwrite, same id) an entry; secrets are redacted before storing."""

    async def put_many(self, entries: Sequence[DeadLetterEntry]) -> None: ...

    async def get(self, entry_id: str) -> DeadLetterEntry | None: ...

    async def cursor_page(
        self, flt: DeadLetterFilter | None = None, *, limit: int = 50, cursor: str | None = None, budget: int = 5_000
    ) -> DeadLetterCursorPage:
        """Newest first after `cursor`, examining at most `budget` entries; ValueError for a bad cursor."""

    def walk(self, flt: DeadLetterFilter | None = None, *, batch: int = 200) -> AsyncIterator[list[DeadLetterEntry]]:
        """Every matching entry, newest first, a batch at a time; safe to remove entries meanwhile."""

    async def remove_many(self, entry_ids: Sequence[str]) -> int:
        """Delete these entries (one call); returns how many were there."""

    async def count_matching(self, flt: DeadLetterFilter | None = None) -> int:
        """How many entries match, by index counts where they are exact, else by walking."""

    async def groups(self, flt: DeadLetterFilter | None = None) -> list[DeadLetterGroup]:
        """By (type, error class, Graph code, status), largest first; kept current, never a scan."""

    async def types(self) -> set[str]:
        """The job types that have entries."""

    async def ensure_groups(self) -> None: ...

    async def rebuild_groups(self, progress: Any = None) -> int:
        """Count entries stored before the groups existed; returns how many."""

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
