"""The workers' ops loop, beside the promoter (worker/arq_adapter.py runs `tick` every
OPS_LOOP_S): flush this process's Graph request counts (graphworks_core/graph_counts.py), keep
each minute's counter snapshot (worker/metrics_data.py; once across workers, SET NX), and
evaluate the alerts once per `evaluate_every_s` tick across all workers (SET NX EX on the tick's
key: whichever worker gets there first evaluates; the others skip that tick).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from graphworks_core import graph_counts, keys
from graphworks_core.clock import Clock
from graphworks_core.settings import Settings
from worker.alerts import AlertNotifier, AlertsConfig, evaluate_and_store
from worker.client import GraphworksClient
from worker.metrics_data import snapshot_minute

OPS_LOOP_S = 1.0


class OpsLoop:
    def __init__(self, redis: aioredis.Redis, settings: Settings, config: AlertsConfig, clock: Clock) -> None:
        self.redis = redis
        self.config = config
        self.clock = clock
        self.every_s = min(OPS_LOOP_S, config.evaluate_every_s / 2)
        self._minute = -1
        self._tick = -1
        self.evaluations = 0

        client = GraphworksClient(redis, settings, clock=clock)  # alerts go out as the suite's own send jobs

        async def enqueue(job_type: str, payload: dict[str, Any], idempotency_key: str) -> object:
            return await client.enqueue(job_type, payload, idempotency_key=idempotency_key)

        self.notifier = AlertNotifier(settings, enqueue)

    async def tick(self) -> None:
        await self.flush()
        now = self.clock.now()
        minute = int(now // 60)
        if minute != self._minute:
            await snapshot_minute(self.redis, minute)
            self._minute = minute
        tick = int(now // self.config.evaluate_every_s)
        if tick != self._tick:
            self._tick = tick
            ttl = max(1, int(self.config.evaluate_every_s * 2))
            if await self.redis.set(keys.alerts_tick(tick), "1", nx=True, ex=ttl):
                await evaluate_and_store(self.redis, self.config, now, self.notifier)
                self.evaluations += 1

    async def flush(self) -> None:
        counts = graph_counts.drain()
        if not counts:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for field, n in counts.items():
                    pipe.hincrby(keys.GRAPH_REQUESTS, field, n)
                await pipe.execute()
        except BaseException:
            graph_counts.give_back(counts)
            raise
