"""The demo's dashboard: `graphworks serve`'s API and page on a port of the demo, with a token made
for the run, and (with `--hold`) a worker left running and a few dead letters left to triage, so
that the page has something to show and its Redrive has something to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading

from pydantic import SecretStr

from graphsim.faults import Fault
from graphsim.server import SimServer
from graphsim.threaded_server import ThreadedServer
from graphworks.wiring import build_runner, build_worker
from graphworks_core.settings import Settings
from ops.app import create_api
from worker.client import GraphworksClient

STOP_TIMEOUT_S = 10.0
# Left for the operator after the demo: Graph refuses each of them this many times, then accepts,
# so a redrive from the page (or `graphworks dlq retry`) completes them.
ARCHIVED_CHAT = "19:archived-for-the-dashboard"
MOVED_MAILBOX = "finance-old@contoso.com"


def start_dashboard(settings: Settings, port: int) -> tuple[ThreadedServer, str]:
    """The API and /dashboard in a thread; the admin token is ADMIN_TOKEN if set, else a new one."""
    token = settings.admin_token.get_secret_value() if settings.admin_token else secrets.token_urlsafe(18)
    api_settings = settings.model_copy(update={"admin_token": SecretStr(token)})
    server = ThreadedServer(create_api(api_settings), port=port, name="dashboard", lifespan="on").start()
    return server, token


async def _leave_dead_letters(settings: Settings, sim: SimServer) -> int:
    import redis.asyncio as aioredis

    archived = "Chat is archived and cannot receive messages."
    sim.state.add_fault(Fault(method="POST", path=f"/chats/{ARCHIVED_CHAT}/messages", status=400, times=2,
                              graph_code="BadRequest", message=archived))  # fmt: skip
    invalid = f"The requested user '{MOVED_MAILBOX}' is invalid."
    sim.state.add_fault(Fault(method="POST", path=f"/users/{MOVED_MAILBOX}/sendMail", status=404, times=1,
                              graph_code="ErrorInvalidUser", message=invalid))  # fmt: skip
    redis = aioredis.Redis.from_url(str(settings.redis_url))
    try:
        client = GraphworksClient(redis, settings)
        for i in range(2):
            await client.send_teams_message(chat_id=ARCHIVED_CHAT, content=f"Weekly report {i}")
        await client.send_mail(mailbox=MOVED_MAILBOX, to=["cfo@contoso.com"], subject="Q4", body="numbers")
    finally:
        await redis.aclose()
    return 3


class HeldWorker:
    """A worker in a thread of its own (its own event loop) until `stop()`."""

    def __init__(self, settings: Settings, sim: SimServer) -> None:
        self.settings = settings
        self.sim = sim
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.left = 0
        self._thread = threading.Thread(target=self._run, name="held-worker", daemon=True)

    def start(self) -> HeldWorker:
        self._thread.start()
        self._ready.wait(STOP_TIMEOUT_S)
        return self

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        import redis.asyncio as aioredis

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.left = await _leave_dead_letters(self.settings, self.sim)
        redis = aioredis.Redis.from_url(str(self.settings.redis_url))
        runner = build_runner(self.settings, redis)
        worker = build_worker(runner, burst=False, handle_signals=False)
        task = asyncio.create_task(worker.async_run())
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            with contextlib.suppress(Exception):
                await worker.close()
            await runner.graph.close()
            await redis.aclose()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(STOP_TIMEOUT_S)
