"""What a processor gets besides its payload: the Graph client, Redis, settings, the clock, and a
way to say how far it got (its status record's `progress`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio as aioredis

from graphworks_core.clock import Clock
from graphworks_core.envelope import Envelope
from graphworks_core.settings import Settings
from graphworks_core.status import Progress, ProgressUnit
from worker.graph.client import GraphClient
from worker.status import report_progress


@dataclass(frozen=True)
class JobContext:
    graph: GraphClient
    redis: aioredis.Redis
    settings: Settings
    clock: Clock
    envelope: Envelope

    run_id: str = ""  # the arq job of this attempt (worker/queue.py arq_job_id)
    reported: list[Progress] = field(default_factory=list)  # the last progress reported, kept in the final record

    async def progress(self, done: int, total: int | None, unit: ProgressUnit) -> None:
        """Record how far the job got (uploads: bytes, syncs: pages): one SET of its status record."""
        progress = Progress(done=done, total=total, unit=unit)
        self.reported[:] = [progress]
        await report_progress(self.redis, self.envelope, self.run_id, progress)

    @property
    def force_token_refresh(self) -> bool:
        """The previous attempt got 401/403: ask the token provider for a new token, not its cached one."""
        return self.envelope.refresh_auth
