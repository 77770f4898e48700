"""deploy/ agrees with the code. The image must carry every package the distribution installs (a
new top-level package that the Dockerfile does not COPY builds fine and fails at the first import
in production), and the stop grace periods must outlast the worker's shutdown grace."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_dockerfile_copies_every_top_level_package() -> None:
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.split(".")[0].rstrip("*") for p in include}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (ROOT / "deploy" / "Dockerfile").read_text(), re.MULTILINE))
    assert packages == copied
    assert all((ROOT / p / "__init__.py").is_file() for p in packages)


def test_stop_grace_periods_outlast_the_workers_shutdown_grace() -> None:
    # SIGKILL must not come before a worker has handed its unfinished jobs back.
    worker = (ROOT / "deploy" / "k8s" / "worker.yaml").read_text()
    k8s_period = int(re.search(r"terminationGracePeriodSeconds: (\d+)", worker).group(1))  # type: ignore[union-attr]
    grace = float(re.search(r'name: WORKER_SHUTDOWN_GRACE_S\s+value: "([\d.]+)"', worker).group(1))  # type: ignore[union-attr]
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    compose_period = int(re.search(r"stop_grace_period: (\d+)s", compose).group(1))  # type: ignore[union-attr]
    env_grace = float(re.search(r"^WORKER_SHUTDOWN_GRACE_S=([\d.]+)$", (ROOT / "deploy" / "env.example").read_text(),
                                re.MULTILINE).group(1))  # type: ignore[union-attr]  # fmt: skip
    assert k8s_period >= grace + 5
    assert compose_period >= env_grace + 5
