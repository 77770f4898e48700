"""Deliver one item to a sink at most once per version: a Redis marker (SET NX, TTL) per version.

Transactional sink (the Redis Stream): WATCH the marker, then one MULTI writes the entry and the
marker, so a duplicate delivery (Graph notifies at least once) never adds a second entry.
External sink (HTTP, callable): claim the marker for this job (`pending:<job>`), call the sink,
then mark it done; a failed call gives the claim back so the retry can deliver. A worker dying
between the call and the mark delivers again on its re-run: at least once for external sinks.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from worker.sinks.base import ExternalSink, Sink, SinkRecord, TransactionalSink

DONE = b"done"
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


async def deliver_once(
    redis: aioredis.Redis, sink: Sink, record: SinkRecord, *, marker: str, ttl_s: int, owner: str, claim_ttl_s: int
) -> bool:
    """True if `record` was delivered now; False if this version was delivered (or is being) already."""
    if isinstance(sink, TransactionalSink):
        async with redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(marker)
                if await pipe.get(marker) == DONE:
                    return False
                pipe.multi()  # type: ignore[no-untyped-call]
                sink.stage(pipe, [record])
                pipe.set(marker, DONE, ex=ttl_s)
                await pipe.execute()
                return True
            except WatchError:
                return False  # another job wrote the marker between our GET and EXEC: it delivered
    assert isinstance(sink, ExternalSink)
    mine = f"pending:{owner}".encode()
    if not await redis.set(marker, mine, nx=True, ex=claim_ttl_s) and await redis.get(marker) != mine:
        return False  # delivered already, or another job holds the claim right now
    try:
        await sink.send([record])
    except BaseException:
        await redis.register_script(_RELEASE)(keys=[marker], args=[mine])
        raise
    await redis.set(marker, DONE, ex=ttl_s)
    return True
