"""Pay at worker start the first-use costs the processors' first Graph calls would otherwise pay.

msgraph-sdk imports each request builder module the first time its property is touched; doing
that inside a job makes a worker's first call of each kind slower than its tenth. Building the
builders once here (dummy ids, no request is sent) moves that cost to startup.

The HTTP stack (httpx, httpcore, h11) likewise spends 20-60 ms on a process's first request, and
that one is paid after the limiter's permit: in bench/limits_chat.py each worker's first post
reached graphsim 30-60 ms after its slot (the only late sends of the run), late enough to land in
Graph's window with the next slot's and be answered 429. One request at start through a fresh
transport to a one-shot loopback server (never Graph) moves it before any permit.

Last, worker/startup_heap.py moves the startup heap out of the collector's full passes.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx

from worker.graph.client import GraphClient

log = logging.getLogger("graphworks.warmup")


def preload_graph_paths(graph: GraphClient) -> float:
    """Touch every request builder a processor uses; returns the seconds it took."""
    started = time.perf_counter()
    sdk = graph.sdk
    _ = sdk.chats.by_chat_id("x").messages.by_chat_message_id("x")
    _ = sdk.teams.by_team_id("x").channels.by_channel_id("x").messages.by_chat_message_id("x")
    user = sdk.users.by_user_id("x")
    _ = user.send_mail
    message = user.messages.by_message_id("x")
    _ = message.attachments.create_upload_session
    _ = message.send
    _ = user.mail_folders.by_mail_folder_id("x").messages
    _ = sdk.drives.by_drive_id("x").items.by_drive_item_id("x").content
    # The request machinery itself (RequestInformation, the middleware chain) on its first use.
    import kiota_abstractions.request_information  # noqa: F401
    import kiota_http.middleware  # noqa: F401

    took = time.perf_counter() - started
    log.debug("preloaded Graph request builders in %.3f s", took)
    return took


WARMUP_TIMEOUT_S = 5.0


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
        await writer.drain()
    finally:
        writer.close()


async def warm_http_stack() -> float:
    """Send one request through a fresh httpx transport to a loopback server; the seconds it took.

    Best effort: a failure is logged, never raised (a worker must start without it).
    """
    started = time.perf_counter()
    try:
        server = await asyncio.start_server(_answer, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            async with asyncio.timeout(WARMUP_TIMEOUT_S), httpx.AsyncClient(transport=httpx.AsyncHTTPTransport()) as c:
                await c.get(f"http://127.0.0.1:{port}/warm-up")
        finally:
            server.close()
            await server.wait_closed()
    except (OSError, TimeoutError, httpx.HTTPError) as exc:
        log.warning("HTTP warm-up failed (%s: %s); the first Graph request may be late", type(exc).__name__, exc)
    took = time.perf_counter() - started
    log.debug("warmed the HTTP stack in %.1f ms", took * 1000)
    return took
