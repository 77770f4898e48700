"""`graphworks serve --role all`: the webhook receiver and the API in one process, one port.

A path test sends `/webhooks/*` straight to the raw receiver (webhooks/app.py; no framework in its
path, so its latency budget is untouched) and everything else to the API (ops/app.py). Each app
keeps its own lifespan: startup runs both in turn, shutdown both in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphworks_core.settings import Settings, load_settings
from ops.app import create_api
from webhooks.app import ReceiverApp

WEBHOOKS_PREFIX = "/webhooks"


class LifespanFailed(RuntimeError):
    pass


@contextlib.asynccontextmanager
async def _lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run `app`'s ASGI lifespan: started on entry, shut down on exit."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()

    async def send(message: Message) -> None:
        await outbox.put(message)

    async def run() -> None:
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)

    task = asyncio.create_task(run())

    async def answer() -> Message:
        getter = asyncio.create_task(outbox.get())
        await asyncio.wait([getter, task], return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        task.result()  # raised: let it out
        return {"type": "lifespan.startup.complete"}  # returned without the protocol: nothing to do

    await inbox.put({"type": "lifespan.startup"})
    reply = await answer()
    if reply["type"] == "lifespan.startup.failed":
        raise LifespanFailed(reply.get("message", "startup failed"))
    try:
        yield
    finally:
        if not task.done():
            await inbox.put({"type": "lifespan.shutdown"})
            await answer()
            await task


class ServeApp:
    def __init__(self, receiver: ASGIApp, api: ASGIApp) -> None:
        self.receiver = receiver
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path: str = scope.get("path", "")
        if path == WEBHOOKS_PREFIX or path.startswith(WEBHOOKS_PREFIX + "/"):
            await self.receiver(scope, receive, send)
        else:
            await self.api(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    await stack.enter_async_context(_lifespan(self.api))
                    # The receiver last: its startup freezes the heap, with the API's imports in it.
                    await stack.enter_async_context(_lifespan(self.receiver))
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
                await receive()  # lifespan.shutdown
        except Exception as exc:
            await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})


def build(settings: Settings) -> ServeApp:
    return ServeApp(ReceiverApp(settings), create_api(settings))


def create_app() -> ServeApp:
    """uvicorn's factory (`graphworks.serve_app:create_app`): settings from the environment."""
    return build(load_settings())
