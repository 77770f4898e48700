"""The fuzz case of the fault suite: tests/fuzz/ (schemathesis against a running `serve`, hypothesis
against the webhook receiver) with far more examples than `./dev test` gives them.

The tests read their sizes from GRAPHWORKS_FUZZ_API_EXAMPLES (per operation and token) and
GRAPHWORKS_FUZZ_RECEIVER_EXAMPLES; pytest runs them in a child process with its own redis-server
and graphsim, and hypothesis's statistics give the cases tried.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from chaos.report import CaseResult, equals, info

ROOT = Path(__file__).resolve().parents[2]
API_EXAMPLES = 25  # per operation and token, at --jobs 10000 (./dev test runs 3)
RECEIVER_EXAMPLES = 6_000  # at --jobs 10000 (./dev test runs 150)
LIMIT_S = 1200.0  # the case's time limit at --jobs 10000 (about 5 minutes on a loaded 2-core machine)
# "- 300 passing, 0 failing, and 61 invalid test cases", under "during generate phase"
GENERATED = re.compile(r"during generate phase.*?\n\s*- Typical.*?\n\s*- (\d+) passing, (\d+) failing", re.S)


@dataclass(frozen=True)
class FuzzRun:
    exit_code: int
    tests: int
    failed: int
    cases_passed: int
    cases_failed: int
    log: Path

    @property
    def cases(self) -> int:
        return self.cases_passed + self.cases_failed


async def run_fuzz(tmp: Path, api_examples: int, receiver_examples: int, limit_s: float) -> FuzzRun:
    """pytest on tests/fuzz/ at these sizes, its output in `tmp`/fuzz.log; killed past `limit_s`."""
    log, junit = tmp / "fuzz.log", tmp / "fuzz.xml"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # its own redis-server
    env.update(GRAPHWORKS_FUZZ_API_EXAMPLES=str(api_examples), GRAPHWORKS_FUZZ_RECEIVER_EXAMPLES=str(receiver_examples))
    args = ["-m", "pytest", "tests/fuzz", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
            f"--junitxml={junit}", "-o", f"timeout={int(limit_s)}"]  # fmt: skip
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(sys.executable, *args, cwd=ROOT, env=env, stdout=out, stderr=out)
        try:
            async with asyncio.timeout(limit_s):
                code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    text = log.read_text(errors="replace")
    found = [(int(p), int(f)) for p, f in GENERATED.findall(text)]
    tests = failed = 0
    if junit.exists():
        root = ET.parse(junit).getroot()
        suite = root.find("testsuite") if root.tag == "testsuites" else root
        if suite is not None:
            tests = int(suite.get("tests", 0))
            failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    return FuzzRun(code, tests, failed, sum(p for p, _ in found), sum(f for _, f in found), log)


class CaseRig(Protocol):
    """What the case needs of run.py's Rig: a temporary directory and a progress line."""

    tmp: Path

    def log(self, message: str) -> None: ...


class Sized(Protocol):
    """What the case needs of run.py's Options: the --jobs scale."""

    @property
    def scale(self) -> float: ...


async def case_fuzz(r: CaseRig, opts: Sized, result: CaseResult) -> None:
    api, receiver = max(3, round(API_EXAMPLES * opts.scale)), max(150, round(RECEIVER_EXAMPLES * opts.scale))
    r.log(f"pytest tests/fuzz: {api} examples per API operation and token, {receiver} receiver deliveries")
    f = await run_fuzz(r.tmp, api, receiver, limit_s=LIMIT_S * max(1.0, opts.scale) - 30)
    r.log(f"pytest exited {f.exit_code}; its output: {f.log}")
    result.add(
        info("tests (API operation x token, receiver properties)", f.tests),
        info("cases tried (hypothesis, generate phase)", f.cases),
        equals("cases failing", f.cases_failed, 0),
        equals("tests failed", f.failed, 0),
        equals("pytest exit code", f.exit_code, 0),
    )
    if f.exit_code != 0:
        print(f.log.read_text(errors="replace")[-6000:], flush=True)
