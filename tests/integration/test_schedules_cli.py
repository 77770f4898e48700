"""`graphworks schedules ...` as processes against the Redis named by the environment."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from graphworks_core import keys
from graphworks_core.clock import FakeClock
from graphworks_core.settings import load_settings
from worker.queue import JobQueue
from worker.schedules import ScheduleStore

pytestmark = pytest.mark.slow

MAIL = json.dumps({"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "s", "body": "b"})
TEAMS = json.dumps({"chat_id": "19:ops", "content": "still here"})

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def gw(redis: aioredis.Redis, redis_url: str) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH", "WORKER", "REDIS", "SCHEDULE"))}
    env.update(REDIS_URL=redis_url)

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "graphworks", "schedules", *args], env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        if ok:
            assert proc.returncode == 0, f"{args}: {proc.stderr}"
        return proc

    return run


def tick_at(redis_url: str, when: float) -> list[str]:
    """What a worker's tick would enqueue at `when`."""

    async def tick() -> list[str]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            settings, clock = load_settings(redis_url=redis_url), FakeClock(when)
            return await ScheduleStore(client, JobQueue.from_settings(settings, client, clock), settings, clock).tick()
        finally:
            await client.aclose()

    return asyncio.run(tick())


def stored(redis_url: str) -> int:
    async def count() -> int:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return int(await client.hlen(keys.SCHEDULES))  # type: ignore[misc]
        finally:
            await client.aclose()

    return asyncio.run(count())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--cron", "61 * * * *", "--type", "mail", "--payload", MAIL], "cron: '61 * * * *' is not a valid cron"),
        (["--every", "5", "--type", "fax", "--payload", MAIL], "type: unknown job type 'fax'"),
        (["--every", "5", "--type", "mail", "--payload", '{"mailbox": "x@y.z"}'], "payload: not a valid mail payload"),
        (["--every", "5", "--type", "mail", "--payload", "{nope"], "payload: not JSON"),
        (["--cron", "0 9 * * *", "--timezone", "Nowhere/Land", "--type", "mail", "--payload", MAIL], "timezone: "),
        (
            ["--cron", "0 9 * * *", "--every", "5", "--type", "mail", "--payload", MAIL],
            "exactly one of cron or every_s",
        ),
        (["--type", "mail", "--payload", MAIL], "exactly one of cron or every_s (got neither)"),
    ],
)
def test_a_bad_schedule_exits_1_naming_what_is_wrong_and_stores_nothing(
    gw: Run, redis_url: str, args: list[str], says: str
) -> None:
    proc = gw("add", "bad", *args, ok=False)
    assert proc.returncode == 1 and says in proc.stderr and "nothing was stored" in proc.stderr, proc.stderr
    assert stored(redis_url) == 0


def test_add_list_show_pause_resume_remove(gw: Run, redis_url: str) -> None:
    assert gw("list").stdout.strip() == "no schedules"
    added = gw("add", "nightly", "--cron", "0 2 * * *", "--timezone", "Europe/Berlin", "--type", "mail",
               "--payload", MAIL, "--priority", "7").stdout  # fmt: skip
    assert added.startswith("added nightly: cron '0 2 * * *' Europe/Berlin, mail (priority 7), next 20")
    gw("add", "ping", "--every", "30", "--type", "teams_message", "--payload", TEAMS)
    again = gw("add", "ping", "--every", "60", "--type", "teams_message", "--payload", TEAMS).stdout
    assert again.startswith("replaced ping: every 60 s, teams_message (priority 5), next ")

    listed = json.loads(gw("list", "--json").stdout)
    assert [(s["name"], s["cron"], s["every_s"], s["runs"]) for s in listed] == [
        ("nightly", "0 2 * * *", None, []),
        ("ping", None, 60, []),
    ]
    assert all(s["next_run_at"] and s["last_run_at"] is None and s["last_job_id"] is None for s in listed)

    # A worker's tick a minute from now enqueues ping's job; show and list report it.
    [job_id] = tick_at(redis_url, time.time() + 61)
    shown = json.loads(gw("show", "ping", "--json").stdout)
    assert shown["last_job_id"] == job_id and [r["job_id"] for r in shown["runs"]] == [job_id]
    text = gw("show", "ping").stdout
    assert "recent runs (1):" in text and job_id in text and '"chat_id": "19:ops"' in text
    table = gw("list").stdout.splitlines()
    assert table[0].split() == ["NAME", "WHEN", "TYPE", "LAST", "RUN", "NEXT", "RUN", "LAST", "JOB"]
    assert table[2].startswith("ping") and "every 60 s" in table[2] and table[2].endswith(job_id)

    assert gw("pause", "ping").stdout.strip() == "paused ping"
    paused = json.loads(gw("show", "ping", "--json").stdout)
    assert (paused["paused"], paused["next_run_at"]) == (True, None)
    assert "paused" in gw("list").stdout.splitlines()[2]
    assert gw("resume", "ping").stdout.startswith("resumed ping: every 60 s")
    assert json.loads(gw("show", "ping", "--json").stdout)["next_run_at"] is not None

    assert gw("remove", "ping").stdout.strip() == "removed ping"
    assert [s["name"] for s in json.loads(gw("list", "--json").stdout)] == ["nightly"]
    for command in ("remove", "show", "pause", "resume"):
        proc = gw(command, "ping", ok=False)
        assert proc.returncode == 1 and "no schedule named 'ping'" in proc.stderr


def test_help_explains(gw: Run) -> None:
    text = gw("add", "--help").stdout
    assert "--cron" in text and "--every" in text and "exactly one of --cron or --every" in text
    assert "coalesced" in gw("--help").stdout
