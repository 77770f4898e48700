"""The in-process dead-letter store, for tests and single-process use; behaves like the Redis one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from worker.deadletter.models import (
    DeadLetterCursorPage,
    DeadLetterEntry,
    DeadLetterFilter,
    DeadLetterGroup,
    DeadLetterPage,
    GroupKey,
    decode_cursor,
    encode_cursor,
)


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

    async def put_many(self, entries: Sequence[DeadLetterEntry]) -> None:
        for entry in entries:
            await self.put(entry)

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

    async def cursor_page(
        self, flt: DeadLetterFilter | None = None, *, limit: int = 50, cursor: str | None = None, budget: int = 5_000
    ) -> DeadLetterCursorPage:
        """Up to `limit` matches after `cursor`, newest first (the budget is moot in process)."""
        matches = self._matching(flt)
        if cursor:
            score, entry_id = decode_cursor(cursor)
            matches = [e for e in matches if (e.last_failure_at.timestamp(), e.id) < (score, entry_id)]
        page = matches[:limit]
        more = len(matches) > limit
        last = page[-1] if page else None
        nxt = encode_cursor(last.last_failure_at.timestamp(), last.id) if more and last else None
        return DeadLetterCursorPage(entries=page, next_cursor=nxt)

    async def walk(
        self, flt: DeadLetterFilter | None = None, *, batch: int = 200
    ) -> AsyncIterator[list[DeadLetterEntry]]:
        matches = self._matching(flt)
        for start in range(0, len(matches), batch):
            yield matches[start : start + batch]

    async def remove_many(self, entry_ids: Sequence[str]) -> int:
        return sum(1 for entry_id in entry_ids if self._entries.pop(entry_id, None) is not None)

    async def count_matching(self, flt: DeadLetterFilter | None = None) -> int:
        return len(self._matching(flt))

    async def groups(self, flt: DeadLetterFilter | None = None) -> list[DeadLetterGroup]:
        """The groups by cause, largest first."""
        by_key: dict[GroupKey, list[DeadLetterEntry]] = {}
        for entry in self._matching(None):
            key = GroupKey.of(entry)
            if flt is None or flt.matches_group(key):
                by_key.setdefault(key, []).append(entry)
        groups = [
            DeadLetterGroup(**key.model_dump(), count=len(es), first_at=es[-1].last_failure_at,
                            last_at=es[0].last_failure_at, sample_id=es[0].id)
            for key, es in by_key.items()
        ]  # fmt: skip
        groups.sort(key=lambda g: (-g.count, g.type, g.error_class, g.graph_code or "", g.status or 0))
        return groups

    async def types(self) -> set[str]:
        return {e.type for e in self._matching(None)}

    async def ensure_groups(self) -> None:
        """Nothing to do: groups are computed from the entries in process."""

    async def rebuild_groups(self, progress: Any = None) -> int:
        return 0

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
