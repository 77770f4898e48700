"""The in-process dead-letter store, for tests and single-process use; behaves like the Redis one."""

from __future__ import annotations

from collections.abc import AsyncIterator

from worker.deadletter.models import DeadLetterEntry, DeadLetterFilter, DeadLetterPage


class MemoryDeadLetterStore:
    """DeadLetterStore in a dict; nothing here awaits, so each call is atomic on its event loop."""

    def __init__(self) -> None:
        # Entries are kept as JSON, as in Redis, so callers never share mutable state with the
        # store and anything that would not survive serialisation shows up here as well.
        self._entries: dict[str, str] = {}

    async def put(self, entry: DeadLetterEntry) -> None:
        """Store (or overwrite, same id) an entry, redacted."""
        safe = entry.redacted()
        self._entries[safe.id] = safe.model_dump_json()

    async def get(self, entry_id: str) -> DeadLetterEntry | None:
        """The entry with this id, or None."""
        raw = self._entries.get(entry_id)
        return None if raw is None else DeadLetterEntry.model_validate_json(raw)

    async def page(self, flt: DeadLetterFilter | None = None, *, limit: int = 50, offset: int = 0) -> DeadLetterPage:
        """One page, newest last_failure_at first; total counts every match."""
        if limit < 1 or offset < 0:
            raise ValueError("limit must be >= 1 and offset >= 0")
        matches = self._matching(flt)
        entries = matches[offset : offset + limit]
        end = offset + len(entries)
        return DeadLetterPage(entries=entries, total=len(matches), next_offset=end if end < len(matches) else None)

    async def scan(self, flt: DeadLetterFilter | None = None) -> AsyncIterator[DeadLetterEntry]:
        """Every matching entry, newest first (a snapshot taken when iteration starts)."""
        for entry in self._matching(flt):
            yield entry

    async def remove(self, entry_id: str) -> DeadLetterEntry | None:
        """Delete and return the entry; None if it was not there."""
        raw = self._entries.pop(entry_id, None)
        return None if raw is None else DeadLetterEntry.model_validate_json(raw)

    async def review(self, entry_id: str, note: str | None, *, reviewed: bool = True) -> DeadLetterEntry | None:
        """Set reviewed and (when given) the note; a None note keeps the existing one."""
        current = await self.get(entry_id)
        if current is None:
            return None
        updated = current.model_copy(update={"reviewed": reviewed, "note": current.note if note is None else note})
        self._entries[entry_id] = updated.model_dump_json()
        return updated

    async def purge(self, flt: DeadLetterFilter | None = None) -> int:
        """Delete every matching entry; returns how many."""
        doomed = self._matching(flt)
        for entry in doomed:
            del self._entries[entry.id]
        return len(doomed)

    async def count(self) -> int:
        """How many entries the store holds."""
        return len(self._entries)

    def _matching(self, flt: DeadLetterFilter | None) -> list[DeadLetterEntry]:
        flt = flt or DeadLetterFilter()
        entries = [DeadLetterEntry.model_validate_json(raw) for raw in self._entries.values()]
        # Same order as Redis's ZREVRANGE: score descending, ties by id descending.
        entries.sort(key=lambda e: (e.last_failure_at.timestamp(), e.id), reverse=True)
        return [e for e in entries if flt.matches(e)]
