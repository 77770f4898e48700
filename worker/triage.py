"""Dead-letter triage as operators do it, shared by the ops API (ops/deadletters.py) and the CLI
(`graphworks dlq`): list, group, show, retry one, review, preview or run a bulk redrive, purge.
Every action is written to the audit log (worker/audit.py) with the caller's role; a dry run,
changing nothing, is not an action and is not recorded.
"""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import BaseModel

from worker.audit import AuditLog
from worker.deadletter.models import DeadLetterCursorPage, DeadLetterEntry, DeadLetterFilter, DeadLetterGroup
from worker.deadletter.store import DeadLetterStore
from worker.queue import JobQueue
from worker.redrive import REDRIVE_BATCH, Progress, RedriveResult, redrive_matching, redrive_one

SAMPLE_SIZE = 10
AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(value: str) -> timedelta:
    """`30m`, `12h`, `7d`, `90s` or plain seconds; ValueError otherwise."""
    match = AGE.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not an age: use a number and a unit, like 30m, 12h or 7d")
    return timedelta(seconds=float(match.group(1)) * UNITS[match.group(2)])


def describe(flt: DeadLetterFilter | None) -> str:
    """A filter as the audit log's target: `type=mail error_class=throttled`, or `all`."""
    if flt is None:
        return "all"
    parts = [f"{k}={v.isoformat() if hasattr(v, 'isoformat') else v}"
             for k, v in flt.model_dump(exclude_none=True).items()]  # fmt: skip
    return " ".join(parts) or "all"


class Preview(BaseModel):
    """What a bulk redrive would do: how many entries match, and the newest few of them."""

    matched: int
    sample: list[DeadLetterEntry]


class Triage:
    def __init__(self, store: DeadLetterStore, queue: JobQueue, audit: AuditLog) -> None:
        self.store = store
        self.queue = queue
        self.audit = audit

    async def page(self, flt: DeadLetterFilter | None, *, limit: int, cursor: str | None) -> DeadLetterCursorPage:
        return await self.store.cursor_page(flt, limit=limit, cursor=cursor)

    async def groups(self, flt: DeadLetterFilter | None = None) -> list[DeadLetterGroup]:
        return await self.store.groups(flt)

    async def known_types(self) -> set[str]:
        return await self.store.types()

    async def get(self, entry_id: str) -> DeadLetterEntry | None:
        return await self.store.get(entry_id)

    async def retry(self, entry_id: str, *, role: str) -> RedriveResult:
        result = await redrive_one(self.store, self.queue, entry_id)
        if result.redriven:
            await self.audit.record("dlq.retry", role=role, target=entry_id)
        return result

    async def review(
        self, entry_id: str, note: str | None, *, role: str, reviewed: bool = True
    ) -> DeadLetterEntry | None:
        entry = await self.store.review(entry_id, note, reviewed=reviewed)
        if entry is not None:
            await self.audit.record("dlq.review" if reviewed else "dlq.unreview", role=role, target=entry_id,
                                    detail=note)  # fmt: skip
        return entry

    async def preview(self, flt: DeadLetterFilter | None, *, sample: int = SAMPLE_SIZE) -> Preview:
        """A dry run: reads only."""
        page = await self.store.cursor_page(flt, limit=sample)
        return Preview(matched=await self.count(flt), sample=page.entries)

    async def count(self, flt: DeadLetterFilter | None) -> int:
        """How many entries match (the store's index counts where they answer exactly)."""
        return await self.store.count_matching(flt)

    async def redrive(
        self, flt: DeadLetterFilter | None, *, role: str, batch: int = REDRIVE_BATCH, progress: Progress | None = None
    ) -> RedriveResult:
        result = await redrive_matching(self.store, self.queue, flt, batch=batch, progress=progress)
        detail = f"{len(result.skipped)} skipped" if result.skipped else None
        await self.audit.record("dlq.redrive", role=role, target=describe(flt), count=len(result.redriven),
                                detail=detail)  # fmt: skip
        return result

    async def purge(self, flt: DeadLetterFilter | None, *, role: str) -> int:
        removed = await self.store.purge(flt)
        await self.audit.record("dlq.purge", role=role, target=describe(flt), count=removed)
        return removed
