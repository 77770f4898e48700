"""deploy/ agrees with the code. The image must carry every package the distribution installs (a
new top-level package that the Dockerfile does not COPY builds fine and fails at the first import
in production). The manifests, compose and their grace periods: tests/deploy/."""

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
