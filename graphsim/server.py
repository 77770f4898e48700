"""Running graphsim over real HTTP: in a background thread (tests, demo) or blocking (CLI).

uvicorn serves on a socket bound first (graphsim.threaded_server), so port 0 gives a free port with no race.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from graphsim.app import create_app
from graphsim.state import SimState
from graphsim.threaded_server import ThreadedServer, bind, url_host


def _options() -> dict[str, Any]:
    # graphsim stamps its own Date; uvicorn's would duplicate it.
    return {"lifespan": "off", "date_header": False, "server_header": False, "timeout_graceful_shutdown": 1}


class SimServer:
    """A graphsim serving in a daemon thread; `stop()` shuts it down."""

    def __init__(self, state: SimState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self._server = ThreadedServer(create_app(state), host, port, name="graphsim", **_options())
        self.host = host
        self.port: int = self._server.port
        self.root_url = self._server.url
        self.base_url = f"{self.root_url}/v1.0"

    def start(self) -> None:
        """Start serving; returns once the server accepts connections."""
        self._server.start()

    def stop(self) -> None:
        """Stop serving and wait for the thread to finish."""
        self._server.stop()

    def __repr__(self) -> str:
        return f"SimServer(base_url={self.base_url!r})"


def run_in_thread(port: int = 0, state: SimState | None = None, host: str = "127.0.0.1") -> SimServer:
    """Serve graphsim in a daemon thread on `host`:`port` (0 = a free port); return once it is up."""
    server = SimServer(state if state is not None else SimState(), host=host, port=port)
    server.start()
    return server


def serve(host: str, port: int, state: SimState | None = None) -> None:
    """Serve graphsim in this thread until interrupted; prints the base URL on stderr first."""
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    print(
        f"graphsim: Microsoft Graph emulator at http://{url_host(host)}:{bound_port}/v1.0",
        file=sys.stderr,
        flush=True,
    )
    try:
        app = create_app(state if state is not None else SimState())
        uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, **_options())).run(sockets=[sock])
    finally:
        sock.close()
