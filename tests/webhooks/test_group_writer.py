"""Group commit in the receiver: concurrent deliveries share a write, a write is bounded by the
notifications it carries, and a failed write fails every delivery waiting on it (each answers 503)."""

from __future__ import annotations

import asyncio

import pytest

from graphworks_core.envelope import Envelope
from webhooks import batching
from webhooks.batching import GroupWriter
from worker.queue import Scheduled


class RecordingQueue:
    def __init__(self, fail: bool = False) -> None:
        self.writes: list[int] = []  # notifications per write
        self.fail = fail
        self.gate = asyncio.Event()

    async def put(self, jobs: list[Scheduled]) -> list[str]:
        await self.gate.wait()  # held open, so deliveries pile up behind the first write
        self.writes.append(batching.weight(jobs))
        if self.fail:
            raise ConnectionError("redis went away")
        return [j.envelope.id for j in jobs]


def delivery(items: int) -> list[Scheduled]:
    payload = {"items": [{"subscriptionId": "s", "resource": f"r{i}"} for i in range(items)]}
    return [Scheduled(Envelope(type="notification_batch", payload=payload))]


async def test_deliveries_arriving_during_a_write_share_the_next_one_up_to_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batching, "MAX_NOTIFICATIONS_PER_WRITE", 120)
    queue = RecordingQueue()
    writer = GroupWriter(queue)  # type: ignore[arg-type]
    first = asyncio.create_task(writer.put(delivery(50)))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(writer.put(delivery(50))) for _ in range(5)]
    await asyncio.sleep(0)
    queue.gate.set()
    await asyncio.gather(first, *rest)
    # 50 alone (it started the writer), then 100 + 100 + 50: never 150 in one write
    assert queue.writes == [50, 100, 100, 50]


async def test_one_delivery_over_the_bound_is_still_written_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "MAX_NOTIFICATIONS_PER_WRITE", 10)
    queue = RecordingQueue()
    queue.gate.set()
    await GroupWriter(queue).put(delivery(40))  # type: ignore[arg-type]
    assert queue.writes == [40]


async def test_a_failed_write_fails_every_delivery_in_it() -> None:
    queue = RecordingQueue(fail=True)
    writer = GroupWriter(queue)  # type: ignore[arg-type]
    puts = [asyncio.create_task(writer.put(delivery(3))) for _ in range(3)]
    await asyncio.sleep(0)
    queue.gate.set()
    results = await asyncio.gather(*puts, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)


def test_weight_counts_a_plain_job_as_one() -> None:
    plain = Scheduled(Envelope(type="notification", payload={"subscription_id": "s"}))
    assert batching.weight([plain, *delivery(7)]) == 8
