"""Build the limiter a worker uses: Redis backend, the `[limits]` table, the tenant from the settings."""

from __future__ import annotations

import redis.asyncio as aioredis

from graphworks_core.clock import Clock
from graphworks_core.errors import ConfigError
from graphworks_core.settings import Settings
from ratelimits.base import Limiter, NoLimit
from ratelimits.config import LimitsConfig
from ratelimits.limiter import GraphLimiter
from ratelimits.redis_backend import RedisBackend
from ratelimits.waiting import Sleeper


def fitted(config: LimitsConfig, settings: Settings) -> LimitsConfig:
    """The config with waits that fit the worker's timeouts; refuses a lease TTL that does not.

    A wait runs inside the job, before a request of up to GRAPH_CALL_TIMEOUT_S, under the
    runner's deadline (95% of WORKER_JOB_TIMEOUT_S): waits longer than half of what is left defer.
    """
    room = max(0.0, settings.worker_job_timeout_s * 0.95 - settings.graph_call_timeout_s) / 2
    if config.max_wait_s > room:
        config = config.model_copy(update={"max_wait_s": room})
    if config.lease_ttl_s <= settings.graph_call_timeout_s + config.max_wait_s:
        raise ConfigError(
            "limits.lease_ttl_s must exceed GRAPH_CALL_TIMEOUT_S + limits.max_wait_s, "
            "or a lease could expire while its request is still in flight"
        )
    return config


def tenant_of(settings: Settings) -> str:
    return settings.graph_tenant_id or "default"


def build_limiter(
    settings: Settings, config: LimitsConfig, redis: aioredis.Redis, clock: Clock, sleeper: Sleeper | None = None
) -> Limiter:
    """The shared Redis limiter for the `[limits]` table, or NoLimit when `enabled = false`."""
    if not config.enabled:
        return NoLimit()
    return GraphLimiter(
        RedisBackend(redis),
        fitted(config, settings),
        tenant=tenant_of(settings),
        base_url=settings.graph_base,
        clock=clock,
        sleeper=sleeper,
    )
