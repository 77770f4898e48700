"""Dead-letter entries to and from JSONL, one entry per line, for operators' exports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from pydantic import ValidationError

from worker.deadletter.models import DeadLetterEntry, DeadLetterFilter
from worker.deadletter.store import DeadLetterStore


async def export_jsonl(store: DeadLetterStore, out: TextIO, flt: DeadLetterFilter | None = None) -> int:
    """Write every matching entry, newest first, as one JSON line each; returns how many."""
    written = 0
    async for entry in store.scan(flt):
        out.write(entry.model_dump_json() + "\n")
        written += 1
    return written


def read_jsonl(lines: Iterable[str]) -> list[DeadLetterEntry]:
    """Parse an export back into entries; blank lines are skipped, a bad line raises ValueError."""
    entries: list[DeadLetterEntry] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entries.append(DeadLetterEntry.model_validate_json(line))
        except ValidationError as exc:
            # Name the line: an operator fixing a hand-edited export needs to find it.
            raise ValueError(f"line {number}: not a dead-letter entry: {exc}") from exc
    return entries
