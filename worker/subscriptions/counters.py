"""Counters of what the receiver and the notifications processor accepted, dropped or refused.

The receiver counts in process memory and flushes the deltas to one Redis hash in the
background, so counting costs no round trip on the request path (and a 400 or 413 never
touches Redis). The processors, already in a job, write to Redis directly (a batch's counts in
one flush).
"""

from __future__ import annotations

import logging
from collections import Counter

import redis.asyncio as aioredis

from graphworks_core import keys

log = logging.getLogger("graphworks.webhooks")

# Names, for readers and dashboards.
RECEIVED = "deliveries_received"
ACCEPTED = "items_accepted"
HANDSHAKES = "validation_handshakes"
DROPPED_CLIENT_STATE = "dropped_client_state"
DROPPED_UNKNOWN_SUBSCRIPTION = "dropped_unknown_subscription"
DROPPED_UNKNOWN_TENANT = "dropped_unknown_tenant"
DROPPED_MALFORMED_ITEM = "dropped_malformed_item"
DROPPED_VALIDATION_TOKEN = "dropped_validation_token"
DROPPED_DATA_SIGNATURE = "dropped_data_signature"
DROPPED_DECRYPT = "dropped_decrypt"
REJECTED_MALFORMED_JSON = "rejected_malformed_json"
REJECTED_TOO_LARGE = "rejected_too_large"
REJECTED_CONTENT_TYPE = "rejected_content_type"
REJECTED_VALIDATION_TOKEN = "rejected_validation_token"
UNAVAILABLE = "unavailable_503"
# Counted by the notification processors.
UNROUTABLE = "unroutable"
DUPLICATES = "duplicates"


class Counters:
    """In-process counts; `flush` adds what is new since the last flush to Redis."""

    def __init__(self) -> None:
        self.totals: Counter[str] = Counter()
        self._pending: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        if n:
            self.totals[name] += n
            self._pending[name] += n

    async def flush(self, redis: aioredis.Redis) -> bool:
        """Push pending deltas; on failure keep them for the next flush. True if flushed."""
        if not self._pending:
            return True
        batch, self._pending = self._pending, Counter()
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for name, n in batch.items():
                    pipe.hincrby(keys.WEBHOOK_COUNTERS, name, n)
                await pipe.execute()
        except (aioredis.RedisError, OSError) as exc:
            self._pending.update(batch)
            log.warning("counters not flushed: %s", type(exc).__name__)
            return False
        return True


async def incr(redis: aioredis.Redis, name: str, n: int = 1) -> None:
    await redis.hincrby(keys.WEBHOOK_COUNTERS, name, n)  # type: ignore[misc]  # redis-py's sync|async union


async def read(redis: aioredis.Redis) -> dict[str, int]:
    raw = await redis.hgetall(keys.WEBHOOK_COUNTERS)  # type: ignore[misc]
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
