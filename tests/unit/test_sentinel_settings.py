"""REDIS_SENTINELS, REDIS_SENTINEL_MASTER, the Redis passwords and REDIS_WAIT_*: parsed, checked
together, and a bad value named."""

from __future__ import annotations

import pytest

from graphworks_core.connections import SentinelRedis, describe_redis, redis_client
from graphworks_core.errors import ConfigError
from graphworks_core.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def test_sentinels_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_SENTINELS", "10.0.0.1:26379, sentinel-b:26380,[::1]:26381")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "graphworks")
    monkeypatch.setenv("REDIS_WAIT_REPLICAS", "1")
    settings = load_settings()
    assert settings.sentinel_addresses == [("10.0.0.1", 26379), ("sentinel-b", 26380), ("::1", 26381)]
    assert settings.redis_configured and settings.redis_url is None
    assert (settings.redis_wait_replicas, settings.redis_wait_timeout_s) == (1, 0.5)


def test_defaults_wait_for_no_replica() -> None:
    settings = load_settings()
    assert (settings.redis_wait_replicas, settings.sentinel_addresses, settings.redis_configured) == (0, [], False)


@pytest.mark.parametrize("bad", ["sentinel-a", "sentinel-a:", ":26379", "a:26379,b:port", "a:70000", "a:0"])
def test_a_bad_sentinel_address_is_named(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("REDIS_SENTINELS", bad)
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "graphworks")
    with pytest.raises(ConfigError, match=r"REDIS_SENTINELS: .*is not host:port"):
        load_settings()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_SENTINELS": "a:1"}, "REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together"),
        ({"REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together"),
        ({"REDIS_SENTINELS": "a:1", "REDIS_SENTINEL_MASTER": "m", "REDIS_URL": "redis://x"}, "not both"),
        ({"REDIS_WAIT_REPLICAS": "-1"}, "REDIS_WAIT_REPLICAS"),
        ({"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_S": "0"}, "REDIS_WAIT_TIMEOUT_S"),
        ({"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_S": "1.5"}, "below WEBHOOK_PERSIST_DEADLINE_S"),
        ({"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_S": "0.9", "REDIS_ENQUEUE_TIMEOUT_S": "0.5"},
         "below REDIS_ENQUEUE_TIMEOUT_S"),
    ],
)  # fmt: skip
def test_settings_that_do_not_fit_together_say_why(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


async def test_the_client_is_sentinel_managed_and_described_without_passwords() -> None:
    settings = load_settings(
        redis_sentinels="127.0.0.1:1,127.0.0.1:2",
        redis_sentinel_master="graphworks",
        redis_password="master-secret",
        redis_sentinel_password="sentinel-secret",
    )
    client = redis_client(settings)
    try:
        assert isinstance(client, SentinelRedis)
        pool = client.connection_pool
        assert pool.connection_kwargs["password"] == "master-secret"
        assert pool.connection_kwargs["socket_timeout"] == settings.redis_socket_timeout_s
        sentinels = pool.sentinel_manager.sentinels  # type: ignore[attr-defined]
        assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [1, 2]
        assert {s.connection_pool.connection_kwargs["password"] for s in sentinels} == {"sentinel-secret"}
    finally:
        await client.aclose()
    described = describe_redis(settings)
    assert "graphworks" in described and "127.0.0.1:1" in described and "secret" not in described
