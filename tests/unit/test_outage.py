"""One warning when Redis stops answering, one line when it answers again, whatever the loops report."""

from __future__ import annotations

import logging

import pytest

from graphworks_core.outage import SETTLE_S, Backoff, Outage


def test_one_line_each_way_per_outage_and_stragglers_are_part_of_it(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = Outage(logging.getLogger("t"), "worker", clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        for _ in range(50):  # every loop and job reports the same outage
            outage.failed(ConnectionError("refused"))
        now[0] += 4
        outage.ok()
        outage.ok()
        now[0] += 0.5
        outage.failed(ConnectionError("a stale pooled connection"))  # a straggler, not a new outage
        outage.ok()
        now[0] += SETTLE_S
        outage.failed(ConnectionError("refused again"))  # a new outage
        outage.ok()
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" (")[0].split(" after")[0] for line in lines] == [
        "redis unreachable at worker",
        "redis answers again at worker",
        "redis unreachable at worker",
        "redis answers again at worker",
    ]
    assert "after 4.0 s" in lines[1]
    assert outage.outages == 2
    assert not outage.down


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    backoff = Backoff(first_s=0.05, cap_s=0.3)
    assert [backoff.next() for _ in range(5)] == [0.05, 0.1, 0.2, 0.3, 0.3]
    backoff.reset()
    assert backoff.next() == 0.05
