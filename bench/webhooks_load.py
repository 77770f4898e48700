"""Load generator for bench/webhooks_receiver.py, run as its own process: raw HTTP/1.1 keep-alive.

    python bench/webhooks_load.py --port P --body FILE (--closed N --conns C | --rate R --seconds S --conns C)

Prints one JSON line: sent, ok, statuses, seconds, rate, p50_ms, p99_ms, max_ms. Open loop
(--rate) measures each request from its scheduled time, so a stall counts against the server
(no coordinated omission).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def run(args: argparse.Namespace, body: bytes) -> dict[str, object]:
    raw = (
        b"POST /webhooks/graph HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    work: asyncio.Queue[float | None] = asyncio.Queue()

    async def conn() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
        while (due := await work.get()) is not None:
            start = due if due > 0 else time.perf_counter()
            statuses[await _request(reader, writer, raw)] += 1
            latencies.append(time.perf_counter() - start)
        writer.close()

    tasks = [asyncio.create_task(conn()) for _ in range(args.conns)]
    began = time.perf_counter()
    if args.closed:
        for _ in range(args.closed):
            work.put_nowait(0.0)
    else:
        total = int(args.rate * args.seconds)
        for i in range(total):
            due = began + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            work.put_nowait(due)
    for _ in tasks:
        work.put_nowait(None)
    await asyncio.gather(*tasks)
    took = time.perf_counter() - began
    ms = sorted(x * 1000 for x in latencies)
    return {
        "sent": len(ms),
        "ok": statuses.get(202, 0),
        "statuses": dict(statuses),
        "seconds": round(took, 3),
        "rate": round(len(ms) / took, 1),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2),
        "max_ms": round(ms[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--closed", type=int, default=0, help="closed loop: this many requests, as fast as answered")
    parser.add_argument("--rate", type=float, default=0, help="open loop: requests per second")
    parser.add_argument("--seconds", type=float, default=3)
    args = parser.parse_args()
    with open(args.body, "rb") as f:
        body = f.read()
    print(json.dumps(asyncio.run(run(args, body))))


if __name__ == "__main__":
    main()
