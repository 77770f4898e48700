"""The sink protocols and the record they carry.

Two kinds of sink, because delivery guarantees differ:
- a TransactionalSink writes into Redis, so the processor can queue its writes on the same MULTI
  as its own bookkeeping (dedup marker, delta link): delivered exactly once;
- an ExternalSink (HTTP, a callable) is called first and the bookkeeping is written after it
  succeeded: at least once (a crash between the two delivers that batch again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from redis.asyncio.client import Pipeline


@dataclass(frozen=True)
class SinkRecord:
    """One item for the sink: its JSON text (an InboundMessage or a SyncChange)."""

    data: str


@runtime_checkable
class TransactionalSink(Protocol):
    name: str

    def stage(self, pipe: Pipeline, records: Sequence[SinkRecord]) -> None:
        """Queue the writes that deliver `records` on `pipe` (inside the caller's MULTI)."""


@runtime_checkable
class ExternalSink(Protocol):
    name: str

    async def send(self, records: Sequence[SinkRecord]) -> None:
        """Deliver `records` (one batch); raise to have the job retried."""


Sink = TransactionalSink | ExternalSink
