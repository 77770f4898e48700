"""A loopback TCP fault proxy for fault tests and benches: latency, blackholes, connection resets.

`FaultProxy` listens on 127.0.0.1 and forwards every connection it accepts to one upstream
(Redis, graphsim, a webhook receiver), byte for byte. Point the workers (or redis-py, or an HTTP
client) at `proxy.port` instead of the server's port, then switch faults on and off from any
thread while traffic flows. It stands in for the parts of toxiproxy we need; toxiproxy's server
cannot be installed here.

    with FaultProxy("127.0.0.1", redis_port) as proxy:
        client = redis.Redis("127.0.0.1", proxy.port, socket_timeout=0.5)
        proxy.set_latency(0.2)   # every chunk, each way, 0.2 s late
        proxy.blackhole(True)    # silence both ways: clients time out instead of failing fast
        proxy.blackhole(False)
        proxy.reset_all()        # every open connection gets a TCP RST
        proxy.refuse(True)       # new connections are accepted and reset at once
        proxy.wait_until(lambda s: s.active == 0)

The proxy runs its own asyncio loop in a daemon thread, so synchronous test and bench code can
drive it; every public method may be called from any thread except the proxy's own.

Limits:

- Loopback IPv4 and TCP only, one upstream per proxy. It forwards bytes and knows no protocol, so
  TLS passes through untouched and faults cannot target one command or one request.
- Faults apply to the whole proxy (every connection, both directions), at the granularity of a
  chunk: whatever one read returned, up to 64 KiB. No bandwidth limits, no slicing, no
  one-direction faults.
- Latency delays each chunk, it does not throttle: chunks are pipelined (a chunk read at t is
  written at t + latency, after the chunks read before it, so byte order per direction holds).
  While latency is on, what the proxy has read but not yet written is buffered without limit, so
  TCP back-pressure does not reach the sender. A chunk already waiting picks up a new latency
  value at once (its due time is its arrival time plus the current latency).
- Blackhole: connections are still accepted (the kernel completes the TCP handshake anyway), so
  clients see a read timeout, not a connect timeout. Bytes read while it is on, and bytes due
  for delivery while it is on, are dropped for good, not delivered later; an end of stream (FIN)
  from either side is held back until it is off. When it goes off, new traffic flows again on
  the same connections, which may now be out of step at the protocol level (a request that got
  no reply); clients normally time out and reconnect anyway.
- Resets set SO_LINGER (1, 0) and close, so the peer gets an RST, not a FIN. `reset_all()`
  resets both halves of every connection: the client's and the proxy's own connection upstream.
  An RST or socket error on one half is passed on as an RST on the other (not counted in
  `resets`, which counts the faults injected).
- An upstream that refuses or cannot be reached: the client's connection is reset and counted in
  `upstream_failures`.
- Timing is that of an asyncio loop sharing the GIL with the code under test: latency is a lower
  bound, and upper bounds in tests need generous slack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Literal, TypeVar

__all__ = ["FaultProxy", "ProxyStats", "main"]

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
"""Bytes asked for per read: the unit that latency and blackholes apply to."""

_T = TypeVar("_T")
_Item = tuple[float, bytes] | None
"""One queued chunk (arrival time on the loop's clock, bytes), or None for end of stream."""
_Counter = Literal[
    "connections", "bytes_up", "bytes_down", "dropped_up", "dropped_down", "resets", "refused", "upstream_failures"
]
_Close = Literal["graceful", "abort", "reset"]


@dataclass(frozen=True)
class ProxyStats:
    """A consistent snapshot of a proxy's counters (totals since the proxy was made)."""

    connections: int
    """Connections accepted from clients, refused ones included."""
    active: int
    """Connections open now (accepted and not yet fully closed)."""
    bytes_up: int
    """Bytes forwarded client -> upstream."""
    bytes_down: int
    """Bytes forwarded upstream -> client."""
    dropped_up: int
    """Bytes from clients dropped by a blackhole."""
    dropped_down: int
    """Bytes from upstream dropped by a blackhole."""
    resets: int
    """Connections reset by a fault: by `reset_all()`, plus those reset by `refuse`."""
    refused: int
    """Of `resets`, the connections reset on arrival by `refuse`."""
    upstream_failures: int
    """Connections reset because the upstream could not be reached."""


@dataclass
class _Counters:
    connections: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    dropped_up: int = 0
    dropped_down: int = 0
    resets: int = 0
    refused: int = 0
    upstream_failures: int = 0


class FaultProxy:
    """A TCP forwarder from 127.0.0.1:`port` to (upstream_host, upstream_port) with switchable faults.

    `start()` it (or use it as a context manager), read `port`, and call `set_latency`,
    `blackhole`, `reset_all` and `refuse` from any thread; they apply to open and new connections
    alike. `stats()` and `wait_until()` read the counters from any thread.
    """

    host = "127.0.0.1"

    def __init__(self, upstream_host: str, upstream_port: int, *, listen_port: int = 0) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.listen_port = listen_port
        self.port = 0
        """The port listened on, once `start()` returned."""
        self._latency = 0.0
        self._blackhole = False
        self._refuse = False
        self._cond = threading.Condition()
        self._counters = _Counters()
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start_error: BaseException | None = None
        # Made again on the proxy's loop by each run; replaced by a fresh one on every fault change.
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Start the proxy's thread and return self once it listens (`port` is then set)."""
        if self._thread is not None:
            raise RuntimeError("FaultProxy already started")
        ready = threading.Event()
        self._start_error = None
        thread = threading.Thread(
            target=self._run,
            args=(ready,),
            name=f"FaultProxy->{self.upstream_host}:{self.upstream_port}",
            daemon=True,
        )
        self._thread = thread
        thread.start()
        if not ready.wait(timeout=30):
            raise RuntimeError("FaultProxy did not start listening within 30 s")
        if self._start_error is not None:
            thread.join()
            self._thread = None
            raise self._start_error
        return self

    def stop(self) -> None:
        """Stop listening, close every connection (unsent bytes are dropped) and end the thread."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if threading.current_thread() is thread:
            raise RuntimeError("FaultProxy.stop() called from the proxy's own thread")
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(self._stopping.set)
        thread.join(timeout=30)
        if thread.is_alive():
            raise RuntimeError("FaultProxy's thread did not end within 30 s")
        self._thread = None
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start() if self._thread is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"FaultProxy({self.host}:{self.port} -> {self.upstream_host}:{self.upstream_port}, "
            f"latency={self._latency}, blackhole={self._blackhole}, refuse={self._refuse})"
        )

    # -- faults -----------------------------------------------------------------------------------

    @property
    def latency(self) -> float:
        return self._latency

    @property
    def blackholed(self) -> bool:
        return self._blackhole

    @property
    def refusing(self) -> bool:
        return self._refuse

    def set_latency(self, seconds: float) -> None:
        """Delay every chunk, in both directions, by `seconds` (0 = off); byte order is kept."""
        if not seconds >= 0:  # also refuses NaN
            raise ValueError(f"latency must be >= 0 s, got {seconds!r}")
        self._latency = float(seconds)
        self._poke()

    def blackhole(self, on: bool) -> None:
        """While on, forward nothing either way and send nothing back: peers see silence, not a reset.

        Connections are still accepted and read from, but the bytes read (and the bytes already
        queued and due while it is on) are dropped, not delivered when it goes off; an end of
        stream is held back until it is off. After `blackhole(False)`, new traffic flows again.
        """
        self._blackhole = bool(on)
        self._poke()

    def refuse(self, on: bool) -> None:
        """While on, new connections are accepted and reset at once (open ones are left alone)."""
        self._refuse = bool(on)
        self._poke()

    def reset_all(self) -> int:
        """Abort every open connection with a TCP RST, both halves; return how many were reset.

        Returns once the sockets are closed, so a client's next read or write sees the reset. New
        connections are accepted normally afterwards (unless `refuse` is on).
        """
        return self._call(self._reset_all())

    # -- counters ---------------------------------------------------------------------------------

    def stats(self) -> ProxyStats:
        """A consistent snapshot of the counters."""
        with self._cond:
            return self._snapshot()

    def wait_until(self, predicate: Callable[[ProxyStats], bool], timeout: float = 10.0) -> ProxyStats:
        """Block until `predicate(stats)` holds (it is re-checked on every counter change).

        Returns the snapshot that satisfied it; raises TimeoutError after `timeout` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self._snapshot()), timeout=timeout):
                raise TimeoutError(f"proxy stats did not reach the condition in {timeout} s: {self._snapshot()}")
            return self._snapshot()

    @property
    def connections(self) -> int:
        return self.stats().connections

    @property
    def active(self) -> int:
        return self.stats().active

    @property
    def bytes_up(self) -> int:
        return self.stats().bytes_up

    @property
    def bytes_down(self) -> int:
        return self.stats().bytes_down

    @property
    def resets(self) -> int:
        return self.stats().resets

    def _snapshot(self) -> ProxyStats:
        return ProxyStats(active=len(self._links), **asdict(self._counters))

    def _add(self, counter: _Counter, n: int = 1) -> None:
        with self._cond:
            setattr(self._counters, counter, getattr(self._counters, counter) + n)
            self._cond.notify_all()

    def _links_changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- the proxy's thread -----------------------------------------------------------------------

    def _poke(self) -> None:
        """Wake every waiting chunk and end of stream to re-read the faults."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(self._faults_changed)

    def _faults_changed(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            coro.close()
            raise RuntimeError("FaultProxy is not running")
        if threading.current_thread() is thread:
            coro.close()
            raise RuntimeError("FaultProxy's blocking methods cannot be called from its own thread")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:
            if ready.is_set():
                log.exception("FaultProxy's loop failed")
            else:
                self._start_error = exc
        finally:
            ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._accept, self.host, self.listen_port)
        self.port = int(server.sockets[0].getsockname()[1])
        self._loop = asyncio.get_running_loop()
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for link in list(self._links):
                link.close("abort")
            # The handlers end on their own once their links are aborted. Cancelled only if one
            # does not: Python 3.11's start_server logs an error for a handler task ending cancelled.
            handlers = list(self._handlers)
            if handlers:
                _, pending = await asyncio.wait(handlers, timeout=5)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)  # the loop holds tasks weakly
        try:
            self._add("connections")
            if self._refuse:
                _close_writer(writer, "reset")
                self._add("refused")
                self._add("resets")
                await _wait_closed(writer)
                return
            link = _Link(self, reader, writer)
            self._links.add(link)
            self._links_changed()
            try:
                await link.run()
            finally:
                link.close("graceful")  # flushes what is buffered; no-op if the link already closed
                try:
                    await link.wait_closed()
                finally:
                    self._links.discard(link)
                    self._links_changed()
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise  # not ours to swallow
        except Exception:
            log.exception("FaultProxy connection handler failed")
        finally:
            self._handlers.discard(task)

    async def _reset_all(self) -> int:
        links = list(self._links)
        for link in links:
            link.close("reset")
        if links:
            self._add("resets", len(links))
        await asyncio.gather(*(link.wait_closed() for link in links))
        return len(links)

    async def _until_due(self, received: float) -> None:
        """Wait until `received` + the current latency, following changes of the latency."""
        loop = asyncio.get_running_loop()
        while True:
            changed = self._changed
            remaining = received + self._latency - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()

    async def _until_flowing(self) -> None:
        """Wait until no blackhole is on."""
        while self._blackhole:
            await self._changed.wait()


class _Link:
    """One client connection and the proxy's connection upstream for it: two pumps each way."""

    def __init__(self, proxy: FaultProxy, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client_r = client_r
        self.client_w = client_w
        self.upstream_w: asyncio.StreamWriter | None = None
        self.closed = False
        self.tasks: list[asyncio.Task[None]] = []
        self.eofs = 0

    async def run(self) -> None:
        proxy = self.proxy
        try:
            upstream_r, upstream_w = await asyncio.open_connection(proxy.upstream_host, proxy.upstream_port)
        except OSError:
            proxy._add("upstream_failures")
            self.close("reset")
            return
        self.upstream_w = upstream_w
        if self.closed:  # reset (or stopped) while connecting: this half goes the same way
            _close_writer(upstream_w, "reset")
            return
        up: asyncio.Queue[_Item] = asyncio.Queue()
        down: asyncio.Queue[_Item] = asyncio.Queue()
        self.tasks = [
            asyncio.create_task(self._read(self.client_r, up, "dropped_up")),
            asyncio.create_task(self._write(up, upstream_w, "bytes_up", "dropped_up")),
            asyncio.create_task(self._read(upstream_r, down, "dropped_down")),
            asyncio.create_task(self._write(down, self.client_w, "bytes_down", "dropped_down")),
        ]
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def close(self, how: _Close) -> None:
        """Stop the pumps and close both halves; "reset" and "abort" also apply to a link already closing."""
        if self.closed and how == "graceful":
            return
        self.closed = True
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        for writer in (self.client_w, self.upstream_w):
            if writer is not None:
                _close_writer(writer, how)

    async def wait_closed(self) -> None:
        for writer in (self.client_w, self.upstream_w):
            if writer is not None:
                await _wait_closed(writer)

    async def _read(self, src: asyncio.StreamReader, queue: asyncio.Queue[_Item], dropped: _Counter) -> None:
        proxy = self.proxy
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await src.read(CHUNK)
                if self.closed:
                    return
                if not data:
                    break
                if proxy._blackhole:
                    proxy._add(dropped, len(data))
                else:
                    queue.put_nowait((loop.time(), data))
        except OSError:  # reset or failed: pass it on as a reset
            self.close("reset")
            return
        queue.put_nowait(None)

    async def _write(
        self, queue: asyncio.Queue[_Item], dst: asyncio.StreamWriter, sent: _Counter, dropped: _Counter
    ) -> None:
        proxy = self.proxy
        try:
            while True:
                item = await queue.get()
                if item is None:
                    await proxy._until_flowing()
                    if self.closed:
                        return
                    if dst.can_write_eof():
                        dst.write_eof()  # after what is still buffered
                    self.eofs += 1
                    if self.eofs == 2:
                        self.close("graceful")
                    return
                received, data = item
                await proxy._until_due(received)
                if self.closed:
                    return
                if proxy._blackhole:
                    proxy._add(dropped, len(data))
                    continue
                dst.write(data)
                proxy._add(sent, len(data))
                await dst.drain()
        except OSError:
            self.close("reset")


_LINGER_RST = struct.pack("ii", 1, 0)


def _close_writer(writer: asyncio.StreamWriter, how: _Close) -> None:
    if how == "graceful":
        writer.close()
        return
    if how == "reset":
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    writer.transport.abort()


async def _wait_closed(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):  # how it was lost does not matter here
        await writer.wait_closed()


# -- CLI -------------------------------------------------------------------------------------------

_HELP = "commands: latency SECONDS | blackhole on|off | refuse on|off | reset | stats | quit"


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _on_off(word: str) -> bool:
    if word not in ("on", "off"):
        raise ValueError(f"expected on or off, got {word!r}")
    return word == "on"


def _command(proxy: FaultProxy, line: str) -> bool:
    """Run one stdin command; False to quit."""
    words = line.split()
    if not words:
        return True
    name, rest = words[0], words[1:]
    try:
        if name == "quit":
            return False
        if name == "latency" and len(rest) == 1:
            proxy.set_latency(float(rest[0]))
        elif name == "blackhole" and len(rest) == 1:
            proxy.blackhole(_on_off(rest[0]))
        elif name == "refuse" and len(rest) == 1:
            proxy.refuse(_on_off(rest[0]))
        elif name == "reset" and not rest:
            print(f"reset {proxy.reset_all()} connections", file=sys.stderr)
        elif name == "stats" and not rest:
            print(proxy.stats(), file=sys.stderr)
        else:
            print(_HELP, file=sys.stderr)
    except ValueError as exc:
        print(exc, file=sys.stderr)
    print(proxy, file=sys.stderr)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run a proxy until stdin says quit or the process is interrupted; print its port on stdout."""
    parser = argparse.ArgumentParser(description="Loopback TCP fault proxy (latency, blackhole, resets).")
    parser.add_argument("--listen", type=int, default=0, metavar="PORT", help="port on 127.0.0.1; 0 (default): free")
    parser.add_argument("--upstream", type=_host_port, required=True, metavar="HOST:PORT", help="where to forward")
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS", help="initial latency each way")
    args = parser.parse_args(argv)
    upstream_host, upstream_port = args.upstream

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        with FaultProxy(upstream_host, upstream_port, listen_port=args.listen) as proxy:
            proxy.set_latency(args.latency)
            print(proxy.port, flush=True)
            print(f"{proxy}; {_HELP}", file=sys.stderr, flush=True)
            for line in sys.stdin:
                if not _command(proxy, line):
                    return 0
            threading.Event().wait()  # stdin closed (e.g. </dev/null): run until interrupted
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
