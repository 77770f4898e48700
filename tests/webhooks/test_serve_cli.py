"""`graphworks serve` as operators run it: uvicorn in its own process, health check and handshake."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from graphworks.embedded_redis import free_port


def test_serve_answers_health_and_the_handshake(redis_url: str) -> None:
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "GRAPH_STATIC_TOKEN": "t"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphworks", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/queue/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.05)
        assert health.status_code == 200
        echo = httpx.post(f"http://127.0.0.1:{port}/webhooks/graph", params={"validationToken": "a b&c"})
        assert (echo.status_code, echo.text) == (200, "a b&c")
        assert httpx.get(f"http://127.0.0.1:{port}/webhooks/graph").status_code == 405
    finally:
        proc.terminate()
        proc.wait(10)
