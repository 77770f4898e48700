"""deploy/prometheus/alerts.yaml: `promtool check rules` and `promtool test rules` (Debian's
prometheus package; `./dev test` installs it when it can). Missing promtool fails, never skips."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

DIR = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: apt-get install prometheus (./dev test installs it when run as root)"
    return found


def test_rules_check() -> None:
    r = subprocess.run([promtool(), "check", "rules", "alerts.yaml"], cwd=DIR, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_rules_unit_tests() -> None:
    r = subprocess.run([promtool(), "test", "rules", "alerts_test.yaml"], cwd=DIR, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
