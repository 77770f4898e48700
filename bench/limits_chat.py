"""Rate limits across worker processes: 4 `graphworks worker` processes send 2,000 chat messages
over 50 chats to graphsim enforcing 20 rps per tenant and 1 rps per chat (POST chat message,
https://learn.microsoft.com/en-us/graph/throttling-limits). Run with the limiter on, then off.

Prints, for each run, the achieved rate of accepted posts as a ratio to the 20 rps limit (first
to last accepted post), graphsim's 429 count, the busiest 1 s window per chat, and the outcome
counts. Target with the limiter on: ratio >= 0.95 and zero 429s.

    .venv/bin/python bench/limits_chat.py [--messages 2000] [--chats 50] [--workers 4] [--only on|off]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import redis.asyncio as aioredis

from graphsim.limits import SimLimit
from graphsim.server import SimServer, run_in_thread
from graphworks.embedded_redis import start_redis
from graphworks_core.settings import load_settings
from graphworks_core.startup_heap import freeze_startup_heap
from worker.client import GraphworksClient, JobRequest
from worker.stats import Stats

TENANT_RPS = 20
TARGET_RATIO = 0.95
PROGRESS_EVERY_S = 5.0
LIMITS = [
    SimLimit(name="chat_post_tenant", method="POST", path="/chats/*/messages", rate=TENANT_RPS),
    SimLimit(name="chat_post_per_chat", method="POST", path="/chats/*/messages", rate=1, scope_segments=2),
]


async def run_case(limiter_on: bool, sim: SimServer, redis_url: str, args: argparse.Namespace) -> dict[str, float]:
    label = "limiter on " if limiter_on else "limiter off"
    redis = aioredis.Redis.from_url(redis_url)
    await redis.flushdb()
    sim.state.reset()
    sim.state.limits.set(LIMITS)
    with tempfile.TemporaryDirectory() as tmp:
        toml = Path(tmp) / "graphworks.toml"
        toml.write_text(f"[limits]\nenabled = {'true' if limiter_on else 'false'}\n")
        env = dict(os.environ, REDIS_URL=redis_url, GRAPH_BASE_URL=sim.base_url, GRAPH_STATIC_TOKEN="bench",
                   GRAPHWORKS_CONFIG=str(toml), LOG_LEVEL="WARNING")  # fmt: skip
        settings = load_settings(redis_url=redis_url, graph_base_url=sim.base_url, graph_static_token="bench")
        async with GraphworksClient(redis, settings) as gw:
            await gw.enqueue_many(
                JobRequest(type="teams_message", payload={"chat_id": f"19:bench-{i % args.chats}", "content": f"m{i}"})
                for i in range(args.messages)
            )
        started = time.monotonic()
        command = [sys.executable, "-m", "graphworks", "worker", "--burst"]
        workers = [
            subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
            for _ in range(args.workers)
        ]
        stats = Stats(redis)
        try:
            while any(w.poll() is None for w in workers):
                await asyncio.sleep(PROGRESS_EVERY_S)
                snap = await stats.snapshot()
                refused = sum(sim.state.limits.refused().values())
                print(f"  [{label}] {time.monotonic() - started:6.1f}s  completed {snap.completed}  "
                      f"deferred {snap.deferred}  retried {snap.retried}  dead-lettered {snap.dead_lettered}  "
                      f"429s {refused}", flush=True)  # fmt: skip
                if time.monotonic() - started > args.timeout_s:
                    print(f"  [{label}] stopping after {args.timeout_s:.0f} s", flush=True)
                    break
        finally:
            for w in workers:
                if w.poll() is None:
                    w.terminate()
            for w in workers:
                w.wait(timeout=30)
        snap = await stats.snapshot()
    await redis.aclose()
    accepted = sorted(r.at for r in sim.state.requests() if r.method == "POST" and r.status == 201)
    per_chat: dict[str, list[float]] = defaultdict(list)
    for r in sim.state.requests():
        if r.method == "POST" and r.status == 201:
            per_chat[r.path].append(r.at)
    busiest = max((_max_in_window(ts, 1.0) for ts in per_chat.values()), default=0)
    rate = (len(accepted) - 1) / (accepted[-1] - accepted[0]) if len(accepted) > 1 else 0.0
    # Steady state: the middle 80% of accepted posts, without the start-up (every job taken at once)
    lo, hi = len(accepted) // 10, len(accepted) * 9 // 10
    steady = (hi - lo) / (accepted[hi] - accepted[lo]) if hi > lo and accepted[hi] > accepted[lo] else 0.0
    result = {
        "ratio": rate / TENANT_RPS,
        "steady_ratio": steady / TENANT_RPS,
        "rate": rate,
        "accepted": len(accepted),
        "429s": sum(sim.state.limits.refused().values()),
        "busiest_chat_window": busiest,
        "completed": snap.completed,
        "dead_lettered": snap.dead_lettered,
        "retried": snap.retried,
        "deferred": snap.deferred,
        "wall_s": time.monotonic() - started,
    }
    print(f"{label}: accepted {len(accepted)} at {rate:.2f}/s = {result['ratio']:.3f} of the {TENANT_RPS} rps limit; "
          f"429s {result['429s']}; busiest 1 s window of one chat: {busiest}; completed {snap.completed}, "
          f"dead-lettered {snap.dead_lettered}, retried {snap.retried}, deferred {snap.deferred}; "
          f"{result['wall_s']:.1f} s", flush=True)  # fmt: skip
    if result["429s"]:
        t0 = accepted[0] if accepted else 0.0
        refused = [f"{r.path.rsplit('/', 2)[-2]}@{r.at - t0:.3f}" for r in sim.state.requests() if r.status == 429]
        print(f"  429s by limit: {sim.state.limits.refused()}; first: {', '.join(refused[:8])}", flush=True)
        gaps = [b - a for a, b in itertools.pairwise(accepted)]
        print(f"  arrival gaps at graphsim: min {min(gaps) * 1000:.1f} ms, under 20 ms: {sum(g < 0.02 for g in gaps)}")
    return result


def _max_in_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--only", choices=["on", "off"])
    parser.add_argument("--timeout-s", type=float, default=240.0)
    args = parser.parse_args()
    print(
        f"{args.workers} worker processes, {args.messages} chat messages over {args.chats} chats; graphsim "
        f"enforces {TENANT_RPS} rps per tenant and 1 rps per chat (exact sliding 1 s windows)",
        flush=True,
    )
    with start_redis() as server:
        sim = run_in_thread()
        # This process hosts graphsim, whose clock decides what is a 429: keep the collector's full
        # passes (40+ ms over the startup heap) from stalling it and bunching arrivals.
        freeze_startup_heap()
        try:
            results = {}
            for on in (True, False):
                if args.only is None or args.only == ("on" if on else "off"):
                    results[on] = await run_case(on, sim, server.url, args)
        finally:
            sim.stop()
    if True in results:
        r = results[True]
        ok = r["ratio"] >= TARGET_RATIO and r["429s"] == 0
        print(f"limiter on: rate/limit {r['ratio']:.3f} (target >= {TARGET_RATIO}; steady state "
              f"{r['steady_ratio']:.3f}), 429s {r['429s']:.0f} (target 0) {'OK' if ok else 'MISSED'}")  # fmt: skip
    if False in results:
        r = results[False]
        print(f"limiter off: accepted {r['accepted']:.0f} of {args.messages}, 429s {r['429s']:.0f}, "
              f"dead-lettered {r['dead_lettered']:.0f}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
