"""The README's first command: `graphworks demo` runs end to end on its own embedded Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_on_an_embedded_redis_and_delivers_everything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "GRAPH_", "WORKER_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "graphworks", "demo", "--data-dir", str(tmp_path / "demo")],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "embedded Redis" in out and "demo done: every job delivered" in out
    assert "unavailable" in out and "validation" in out  # the dead-letter entries were shown
    assert "dlq retry --all" in out
    assert "inbound stream graphworks:inbound: 4 entries" in out
    assert (tmp_path / "demo" / "redis" / "appendonlydir").exists() or any((tmp_path / "demo" / "redis").glob("*.aof"))
