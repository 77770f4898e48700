"""Redis connections as every component makes them: timeouts, keepalive and retry with backoff
set from the settings, never redis-py's defaults (no socket timeout: a blackholed Redis hangs a
command forever; no retry: one reset fails it).

A command that fails with a connection error or timeout is retried by redis-py itself, with
exponential backoff (50 ms doubling, at most 1 s between tries), `retries` times; what outlasts
that reaches the caller, which rides the outage out its own way (the worker's loops back off and
reconnect, the enqueue client raises QueueUnavailable after REDIS_ENQUEUE_TIMEOUT_S, the
receiver answers 503).

With REDIS_SENTINELS (and REDIS_SENTINEL_MASTER) instead of REDIS_URL the client is redis-py's
Sentinel `master_for` on `SentinelConnection`: each connection attempt asks the sentinels for
the master's address, so a command failing on a dead master is retried (as above) against
whichever master the sentinels name by then; a READONLY reply (the old master, demoted to a
replica, still connected) is turned into a connection error by redis-py's
SentinelManagedConnection and retried the same way.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from graphworks_core.settings import Settings

# What "Redis is unreachable" looks like to a caller: redis-py's errors and the OS's.
UNREACHABLE: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
# redis-py's alone: raised inside a job, they say Redis is down, not that the job failed (Graph's
# network errors arrive as httpx's own).
REDIS_DOWN: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError)


def redis_client(
    settings: Settings,
    *,
    url: str | None = None,
    retries: int = 3,
    connection_class: type[Connection] | None = None,
    socket_timeout: bool = True,
    connect_timeout_s: float | None = None,
) -> aioredis.Redis:
    """A client for REDIS_URL (or `url`) with the settings' timeouts; `retries` per command.

    `socket_timeout=False` is for a caller that bounds every call itself (the receiver's persist
    deadline): redis-py's socket timeout wraps each read in a timeout of its own, which costs.
    """
    target = url or settings.redis_url
    if not target and not settings.redis_sentinels:
        raise ValueError("REDIS_URL (or REDIS_SENTINELS) is not set")
    options: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout_s if socket_timeout else None,
        "socket_connect_timeout": connect_timeout_s or settings.redis_connect_timeout_s,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError, ConnectionError, OSError],
    }
    if not target:
        return _sentinel_client(settings, options, connection_class)
    if connection_class is not None:
        options["connection_class"] = connection_class
    client: aioredis.Redis = aioredis.Redis.from_url(target, **options)
    return client


class SentinelConnection(SentinelManagedConnection):
    """redis-py's Sentinel-managed connection, trying each address the sentinels give once.

    Its `connect` retries "ask the sentinels, connect to that address", but the connect inside
    retries the same address with the client's own retry: with `retries=-1` (the enqueue client,
    the API) forever, so a connection to a dead master never asks the sentinels again and the
    command hangs past the failover. Here the inner connect is one attempt.
    """

    async def connect_to(self, address: tuple[str, int]) -> None:
        retry, self.retry = self.retry, _ONE_TRY
        try:
            await super().connect_to(address)  # type: ignore[no-untyped-call]
        finally:
            self.retry = retry


_ONE_TRY = Retry(NoBackoff(), 0)


class SentinelRedis(aioredis.Redis):
    """The master's client; closing it closes its connections to the sentinels too."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        pool = self.connection_pool
        await super().aclose(close_connection_pool)
        for sentinel in getattr(getattr(pool, "sentinel_manager", None), "sentinels", ()):
            await sentinel.aclose()


def _sentinel_client(
    settings: Settings, options: dict[str, Any], connection_class: type[Connection] | None
) -> aioredis.Redis:
    # No retry towards a sentinel: discovery moves on to the next one (a retrying client would
    # keep asking a dead sentinel).
    sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_")}
    if settings.redis_sentinel_password is not None:
        sentinel_options["password"] = settings.redis_sentinel_password.get_secret_value()
    options["connection_class"] = SentinelConnection
    if connection_class is not None and not issubclass(connection_class, SentinelManagedConnection):
        # The caller's packing (the receiver's hiredis) on the connection that follows the master.
        name = f"Sentinel{connection_class.__name__}"
        options["connection_class"] = type(name, (SentinelConnection, connection_class), {})
    if settings.redis_password is not None:
        options["password"] = settings.redis_password.get_secret_value()
    sentinel = Sentinel(settings.sentinel_addresses, sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call]
    assert settings.redis_sentinel_master is not None  # Settings: REDIS_SENTINELS needs it
    client: aioredis.Redis = sentinel.master_for(settings.redis_sentinel_master, redis_class=SentinelRedis, **options)
    return client


def describe_redis(settings: Settings) -> str:
    """Which Redis the settings name, without passwords, for messages and logs."""
    if settings.redis_sentinels:
        return f"master {settings.redis_sentinel_master!r} of sentinels {settings.redis_sentinels}"
    return display_url(settings.redis_url)


def display_url(url: str | None) -> str:
    """The URL without its password, for messages and logs."""
    if not url:
        return "(REDIS_URL unset)"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
