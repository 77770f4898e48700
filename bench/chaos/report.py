"""What the fault suite prints: a case's figures, each with its goal (if it has one) and whether
it is met, and the summary table over every case run (bench/chaos/run.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Figure:
    """One measured figure; `met` is None for a figure reported without a goal."""

    name: str
    value: str
    goal: str = ""
    met: bool | None = None

    def line(self) -> str:
        verdict = "" if self.met is None else ("OK" if self.met else "MISSED")
        goal = f"goal {self.goal}" if self.goal else ""
        return f"  {self.name:<56} {self.value:>14}  {goal:<22} {verdict}".rstrip()


def info(name: str, value: object) -> Figure:
    return Figure(name, _text(value))


def at_most(name: str, value: float, limit: float, unit: str = "") -> Figure:
    return Figure(name, _text(value) + unit, f"<= {_text(limit)}{unit}", value <= limit)


def below(name: str, value: float, limit: float, unit: str = "") -> Figure:
    return Figure(name, _text(value) + unit, f"< {_text(limit)}{unit}", value < limit)


def equals(name: str, value: object, want: object) -> Figure:
    return Figure(name, _text(value), f"= {_text(want)}", value == want)


def _text(value: object) -> str:
    if isinstance(value, float):
        return "inf" if value == float("inf") else f"{value:.2f}"
    return str(value)


@dataclass
class CaseResult:
    """A case's figures, its wall time, and the error that stopped it (a time limit, a crash)."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def goals(self) -> list[Figure]:
        return [f for f in self.figures if f.met is not None]

    @property
    def ok(self) -> bool:
        return self.error is None and all(f.met for f in self.goals)

    def add(self, *figures: Figure) -> None:
        for figure in figures:
            self.figures.append(figure)
            print(figure.line(), flush=True)


class Clock:
    """Seconds since the case started, for progress lines."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.t0


def progress(clock: Callable[[], float], message: str) -> None:
    print(f"  [{clock():6.1f} s] {message}", flush=True)


def summary(results: Sequence[CaseResult]) -> str:
    rows = [f"{'case':<9} {'goals':>5} {'met':>4} {'time':>9}  verdict"]
    for r in results:
        met = sum(1 for f in r.goals if f.met)
        verdict = "PASS" if r.ok else "FAIL" + (f" ({r.error})" if r.error else "")
        rows.append(f"{r.name:<9} {len(r.goals):>5} {met:>4} {r.seconds:>7.1f} s  {verdict}")
        rows.extend(f"{'':<9} missed: {f.name} = {f.value} (goal {f.goal})" for f in r.goals if not f.met)
    return "\n".join(rows)
