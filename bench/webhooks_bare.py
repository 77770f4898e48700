"""The baseline for bench/webhooks_receiver.py: a bare ASGI handler that reads the body and answers 202."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send


async def not_http(scope: Scope, receive: Receive, send: Send) -> bool:
    """Answer a lifespan scope (and ignore any other that is not HTTP); False for an HTTP one."""
    if scope["type"] == "http":
        return False
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    return True


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if await not_http(scope, receive, send):
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
