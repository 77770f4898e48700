"""The receiver's Redis connection: redis-py's asyncio connection with hiredis packing commands.

redis-py's asyncio client packs every command in pure Python (its sync client already uses
hiredis); a 50-item delivery is 50 Lua calls of 15 arguments, so packing shows in the profile.
"""

from __future__ import annotations

from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection

from graphworks_core.connections import redis_client
from graphworks_core.settings import Settings


class HiredisPackingConnection(Connection):
    def pack_command(self, *args: Any) -> list[bytes]:
        # Same split as redis-py: a command name with a space ("SCRIPT EXISTS") is several tokens.
        if args and isinstance(args[0], str) and " " in args[0]:
            args = (*args[0].split(), *args[1:])
        if any(not isinstance(a, str | bytes | int | float) for a in args):
            return super().pack_command(*args)
        return [hiredis.pack_command(args)]


def receiver_redis(settings: Settings) -> aioredis.Redis:
    """Keepalive and a retry with backoff like every component's; no socket timeout and a connect
    timeout of the persist deadline: that deadline bounds every call, so the 503 comes well
    inside Graph's 3 s."""
    return redis_client(
        settings,
        retries=1,
        connection_class=HiredisPackingConnection if hasattr(hiredis, "pack_command") else None,
        socket_timeout=False,
        connect_timeout_s=settings.webhook_persist_deadline_s,
    )
