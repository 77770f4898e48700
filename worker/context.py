"""What a processor gets besides its payload: the Graph client, Redis, settings, the clock."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from graphworks_core.clock import Clock
from graphworks_core.envelope import Envelope
from graphworks_core.settings import Settings
from worker.graph.client import GraphClient


@dataclass(frozen=True)
class JobContext:
    graph: GraphClient
    redis: aioredis.Redis
    settings: Settings
    clock: Clock
    envelope: Envelope

    @property
    def force_token_refresh(self) -> bool:
        """The previous attempt got 401/403: ask the token provider for a new token, not its cached one."""
        return self.envelope.refresh_auth
