"""Webhook receiver vs a bare uvicorn handler that answers 202, measured in the same run.

The servers run under uvicorn (one process each, same options) against one private
redis-server; the load comes from a separate process (bench/webhooks_load.py) over loopback.
A third server, the floor (bench/webhooks_floor.py), only parses the body and stores it in
Redis in one round trip: the least any receiver that persists before answering must do. A
fourth, `all`, is the receiver behind `graphworks serve --role all`'s path dispatch (the
Service API beside it): its numbers must match the receiver's.
For deliveries of 1 and of 50 notifications it measures:
  - closed loop (32 keep-alive connections, a bounded count): deliveries/s, notifications/s, p50/p99
  - open loop at 1,000 deliveries/s for 3 s: p50/p99 from each request's scheduled time
and checks that every notification the receiver acknowledged is in Redis, inside the one
`notification_batch` job stored per delivery.

    .venv/bin/python bench/webhooks_receiver.py [--rounds 2] [--rate 1000] [--seconds 3]

Targets (the webhooks issue): p99 under 100 ms at 1,000 deliveries/s; at least 0.5 of the bare handler's throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from worker.arq_adapter import JOB_KEY_PREFIX as job_key_prefix

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphworks.embedded_redis import free_port, start_redis
from graphworks_core import keys
from graphworks_core.envelope import decode
from tests.webhooks.helpers import TENANT, item
from worker import arq_adapter
from worker.subscriptions.client_state import client_state_digest, new_client_state
from worker.subscriptions.registry import SubscriptionRecord, SubscriptionRegistry

HERE = Path(__file__).resolve().parent
CONNS = 32
CLOSED_COUNT = {1: 4000, 50: 800}


def _wait_port(port: int, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on {port} did not start")


def _server(target: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "uvicorn", *target, "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log", "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(args, env=env, cwd=HERE.parent)
    _wait_port(port)
    return proc


def _load(port: int, body: Path, extra: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(HERE / "webhooks_load.py"), "--port", str(port), "--body", str(body), *extra],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


SECRET = new_client_state()


async def _reset(redis: aioredis.Redis) -> str:
    """Empty Redis, then the one subscription the deliveries name (same clientState every time)."""
    await redis.flushdb()
    record = SubscriptionRecord(
        id="bench-sub", resource="users/u-1/messages", change_type="created",
        notification_url="http://127.0.0.1/webhooks/graph", expiration=datetime.now(UTC) + timedelta(days=1),
        client_state_sha256=client_state_digest(SECRET), tenant_id=TENANT,
    )  # fmt: skip
    await SubscriptionRegistry(redis).put(record)
    return SECRET


async def _stored(redis: aioredis.Redis) -> tuple[int, int]:
    """(jobs, notifications) in the queue: a `notification_batch` job holds a delivery's items."""
    ids = [m.decode() for m in await redis.zrange(keys.queue("default"), 0, -1)]
    notifications = 0
    for start in range(0, len(ids), 1000):
        for raw in await redis.mget([job_key_prefix + i for i in ids[start : start + 1000]]):
            env = decode(arq_adapter.deserialize(raw)["a"][0])
            notifications += len(env.payload["items"]) if env.type == "notification_batch" else 1
    return len(ids), notifications


def _row(name: str, size: int, r: dict[str, Any]) -> str:
    rates = f"{r['rate']:>8.1f} deliveries/s  {r['rate'] * size:>9.1f} notifications/s"
    times = f"p50 {r['p50_ms']:>6.2f} ms  p99 {r['p99_ms']:>7.2f} ms  max {r['max_ms']:>7.2f} ms"
    return f"  {name:<9} {size:>3}/delivery  {rates}  {times}  202s {r['ok']}/{r['sent']}"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=3)
    args = parser.parse_args()

    redis_server = start_redis()
    redis = aioredis.Redis.from_url(redis_server.url)
    env = {**os.environ, "REDIS_URL": redis_server.url, "GRAPH_STATIC_TOKEN": "x", "GRAPH_TENANT_ID": TENANT,
           "PYTHONPATH": str(HERE.parent)}  # fmt: skip
    bare_port, floor_port, recv_port, all_port = free_port(), free_port(), free_port(), free_port()
    servers = [
        _server(["--app-dir", str(HERE), "webhooks_bare:app"], bare_port, env),
        _server(["--app-dir", str(HERE), "webhooks_floor:app"], floor_port, env),
        _server(["--factory", "webhooks.app:create_app"], recv_port, env),
        _server(["--factory", "graphworks.serve_app:create_app"], all_port, {**env, "ADMIN_TOKEN": "bench"}),
    ]
    ports = (("bare", bare_port), ("floor", floor_port), ("receiver", recv_port), ("all", all_port))
    tmp = Path(tempfile.mkdtemp(prefix="graphworks-bench-"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, uvicorn 1 process per server, "
          f"load from a separate process, {CONNS} keep-alive connections")  # fmt: skip
    summary: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    try:
        for size in (1, 50):
            secret = await _reset(redis)
            body = tmp / f"delivery-{size}.json"
            items = [item("bench-sub", secret, resource=f"Users/u-1/Messages/m-{i}", resourceData={"id": f"m-{i}"})
                     for i in range(size)]  # fmt: skip
            body.write_text(json.dumps({"value": items}))
            print(f"\ndeliveries of {size} ({body.stat().st_size} bytes)")
            for rnd in range(args.rounds):
                for name, port in ports:
                    await _reset(redis)
                    r = _load(port, body, ["--closed", str(CLOSED_COUNT[size]), "--conns", str(CONNS)])
                    if name in ("receiver", "all"):
                        jobs, stored = await _stored(redis)
                        assert stored == r["ok"] * size, f"acknowledged {r['ok'] * size}, stored {stored}"
                        assert jobs == r["ok"], f"{r['ok']} deliveries acknowledged, {jobs} jobs stored"
                    summary.setdefault((name, size, "closed"), []).append(r)
                    print(_row(name, size, r) + f"   (closed loop, round {rnd + 1})")
            for name, port in ports:
                await _reset(redis)
                r = _load(port, body, ["--rate", str(args.rate), "--seconds", str(args.seconds), "--conns", "64"])
                summary[(name, size, "open")] = [r]
                print(_row(name, size, r) + f"   (open loop at {args.rate:.0f}/s for {args.seconds:.0f} s)")
        print("\nsummary (closed-loop medians over rounds; open loop at the target rate)")
        for size in (1, 50):
            bares = [r["rate"] for r in summary[("bare", size, "closed")]]
            recvs = [r["rate"] for r in summary[("receiver", size, "closed")]]
            floors = [r["rate"] for r in summary[("floor", size, "closed")]]
            bare, recv = statistics.median(bares), statistics.median(recvs)
            # Rounds alternate bare/receiver, so each round's pair saw the same machine noise.
            ratios = [round(rv / bv, 2) for rv, bv in zip(recvs, bares, strict=True)]
            print(f"  {size:>2}/delivery: per-round ratios receiver/bare {ratios}")
            floor_ratios = [round(fv / bv, 2) for fv, bv in zip(floors, bares, strict=True)]
            print(f"  {size:>2}/delivery: per-round ratios floor/bare {floor_ratios} (parse + one Redis write, "
                  f"no checks: the most any receiver that persists before answering can reach)")  # fmt: skip
            alls = [r["rate"] for r in summary[("all", size, "closed")]]
            all_ratios = [round(av / rv, 2) for av, rv in zip(alls, recvs, strict=True)]
            all_p99 = summary[("all", size, "open")][0]["p99_ms"]
            print(f"  {size:>2}/delivery: per-round ratios all/receiver {all_ratios} (serve --role all's path "
                  f"dispatch in front of the receiver); p99 at {args.rate:.0f}/s {all_p99:.1f} ms")  # fmt: skip
            p99 = summary[("receiver", size, "open")][0]["p99_ms"]
            ratio_ok = "met" if recv / bare >= 0.5 else "NOT met"
            p99_ok = "met" if p99 < 100 else "NOT met"
            print(
                f"  {size:>2}/delivery: receiver {recv:.0f} deliveries/s ({recv * size:.0f} notifications/s) vs bare "
                f"{bare:.0f}/s -> ratio {recv / bare:.2f} (target >= 0.5: {ratio_ok}); "
                f"p99 at {args.rate:.0f}/s {p99:.1f} ms (target < 100 ms: {p99_ok})"
            )
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(10)
        await redis.aclose()
        redis_server.stop()


if __name__ == "__main__":
    asyncio.run(main())
