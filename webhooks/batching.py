"""Group commit: deliveries that arrive while a write is in flight share the next pipelined write.

Each delivery still waits until its own job is stored before it is answered; under load one
Redis round trip carries many deliveries instead of one each, and with no load a delivery is
written at once (nothing waits to fill a batch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from worker.queue import JobQueue, Scheduled

# A write carries at most this many notifications (a notification_batch job holds a delivery's
# items: counting jobs would let one write grow to 2,000 deliveries of up to 4 MB each).
MAX_NOTIFICATIONS_PER_WRITE = 2000


def weight(jobs: Sequence[Scheduled]) -> int:
    """How many notifications `jobs` carry (a job that is not a batch counts one)."""
    total = 0
    for job in jobs:
        items = job.envelope.payload.get("items")
        total += len(items) if isinstance(items, list) else 1
    return total


class GroupWriter:
    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self._pending: list[tuple[Sequence[Scheduled], int, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def put(self, jobs: Sequence[Scheduled]) -> None:
        """Return once `jobs` are stored; raise what the write raised."""
        if not jobs:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((jobs, weight(jobs), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        await future

    async def _write_all(self) -> None:
        while self._pending:
            batch: list[tuple[Sequence[Scheduled], asyncio.Future[None]]] = []
            count = 0
            while self._pending and (not batch or count + self._pending[0][1] <= MAX_NOTIFICATIONS_PER_WRITE):
                jobs, n, future = self._pending.pop(0)
                batch.append((jobs, future))
                count += n
            live = [(jobs, f) for jobs, f in batch if not f.done()]  # a caller past its deadline has left
            try:
                await self.queue.put([job for jobs, _ in live for job in jobs])
            except Exception as exc:  # handed to every waiting delivery: each answers 503
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in live:
                if not future.done():
                    future.set_result(None)
