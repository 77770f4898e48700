"""Running graphsim over real HTTP: in a background thread (tests, demo) or blocking (CLI).

uvicorn serves on a socket bound here first, so port 0 gives a free port with no race.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

import uvicorn

from graphsim.app import create_app
from graphsim.state import SimState

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0


def _bind(host: str, port: int) -> socket.socket:
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # accepted sockets inherit it. Without it every response waits ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _server(state: SimState) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(state),
        log_level="warning",
        access_log=False,
        lifespan="off",
        # graphsim stamps its own Date; uvicorn's would duplicate it.
        date_header=False,
        server_header=False,
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class SimServer:
    """A graphsim serving in a daemon thread; `stop()` shuts it down."""

    def __init__(self, state: SimState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self._sock = _bind(host, port)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self.root_url = f"http://{_url_host(host)}:{self.port}"
        self.base_url = f"{self.root_url}/v1.0"
        self._server = _server(state)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="graphsim", daemon=True
        )

    def start(self) -> None:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._sock.close()
                raise RuntimeError(f"graphsim did not start on {self.root_url}")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop serving and wait for the thread to finish."""
        self._server.should_exit = True
        self._thread.join(_STOP_TIMEOUT_S)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(_STOP_TIMEOUT_S)
        self._sock.close()

    def __repr__(self) -> str:
        return f"SimServer(base_url={self.base_url!r})"


def run_in_thread(port: int = 0, state: SimState | None = None, host: str = "127.0.0.1") -> SimServer:
    """Serve graphsim in a daemon thread on `host`:`port` (0 = a free port); return once it is up."""
    server = SimServer(state if state is not None else SimState(), host=host, port=port)
    server.start()
    return server


def serve(host: str, port: int, state: SimState | None = None) -> None:
    """Serve graphsim in this thread until interrupted; prints the base URL on stderr first."""
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    print(
        f"graphsim: Microsoft Graph emulator at http://{_url_host(host)}:{bound_port}/v1.0",
        file=sys.stderr,
        flush=True,
    )
    try:
        _server(state if state is not None else SimState()).run(sockets=[sock])
    finally:
        sock.close()
