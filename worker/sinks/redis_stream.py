"""The default sink: a Redis Stream (`graphworks:inbound`), one entry per item, field `data` = JSON.

Consumer-group friendly: readers use XREADGROUP/XACK on it. MAXLEN ~ trims the oldest entries
(approximate trimming is O(1) amortised); entries a slow group has not read yet are trimmed too,
so size INBOUND_STREAM_MAXLEN for the longest consumer outage (0: never trim).
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio.client import Pipeline

from worker.sinks.base import SinkRecord


class RedisStreamSink:
    name = "redis"

    def __init__(self, stream: str, maxlen: int) -> None:
        self.stream = stream
        self.maxlen = maxlen

    def stage(self, pipe: Pipeline, records: Sequence[SinkRecord]) -> None:
        for record in records:
            if self.maxlen:
                pipe.xadd(self.stream, {"data": record.data}, maxlen=self.maxlen, approximate=True)
            else:
                pipe.xadd(self.stream, {"data": record.data})
