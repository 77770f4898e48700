"""Shared CLI plumbing: settings, Redis, running coroutines, error reporting."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from graphworks_core.errors import ConfigError, EnqueueError

if TYPE_CHECKING:  # loaded by the commands that use them, so `--help` and light commands stay fast
    import redis.asyncio as aioredis

    from graphworks_core.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")


def settings_or_exit() -> Settings:
    """The settings, with the GRAPHWORKS_CONFIG file they name checked too; a bad value exits 1 naming it."""
    from worker.config_file import load_config

    try:
        return load_config()[0]
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


def redis_from(settings: Settings) -> aioredis.Redis:
    from graphworks_core.connections import redis_client

    if not settings.redis_configured:
        raise click.ClickException(
            "REDIS_URL is not set: name the Redis the workers use (redis://host:port/db, or REDIS_SENTINELS"
            " and REDIS_SENTINEL_MASTER)"
        )
    return redis_client(settings)


def run_async(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """Run an async click command; report our errors and Redis outages as one clear line."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        from redis.exceptions import ConnectionError as RedisConnectionError

        try:
            return asyncio.run(fn(*args, **kwargs))
        except (ConfigError, EnqueueError) as exc:
            raise click.ClickException(str(exc)) from exc
        except (ConnectionError, OSError, RedisConnectionError) as exc:
            raise click.ClickException(f"cannot reach Redis: {exc}") from exc

    return wrapper


@contextlib.asynccontextmanager
async def opened_redis(settings: Settings | None = None) -> AsyncIterator[aioredis.Redis]:
    """The Redis named by the settings (read from the environment if not given), closed on exit."""
    redis = redis_from(settings or settings_or_exit())
    try:
        yield redis
    finally:
        await redis.aclose()


def echo_err(message: str) -> None:
    click.echo(message, err=True)
    sys.stderr.flush()
