"""Redis Sentinel with real processes: a master, a replica and three sentinels on loopback.

- A command waiting on a SIGKILLed master completes on the one the sentinels promote, however
  the client retries.
- A connection left on a server that is now a replica (an old master demoted) gets READONLY; the
  client turns it into "reconnect" and the command lands on the master the sentinels name, for
  every component's client (the receiver's hiredis-packing one too).
- The master SIGKILLed mid-run (bench/chaos/failover.py: real `graphworks worker` processes
  sending through graphsim, a real `graphworks serve --role webhooks`): with REDIS_WAIT_REPLICAS=1
  no acknowledged enqueue and no 202'd delivery is lost, and no process needs a restart.

Waits are on conditions with generous limits; the scenario's own pauses are how long work flows
before and after the fault, not waits for something to happen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import SentinelManagedConnection

from bench.chaos.failover import Plan, run_failover
from graphworks.embedded_redis import SentinelGroup, start_sentinel_group
from graphworks_core.connections import redis_client
from graphworks_core.settings import Settings, load_settings
from webhooks.redis_conn import receiver_redis

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    with start_sentinel_group(tmp_path_factory.mktemp("sentinel")) as g:
        yield g


def _settings(group: SentinelGroup) -> Settings:
    return load_settings(redis_sentinels=group.sentinels_setting, redis_sentinel_master=group.master_name)


def _readonly_errors(port: int) -> int:
    with redis.Redis(port=port) as client:
        return int(client.info("errorstats").get("errorstat_READONLY", {}).get("count", 0))


@pytest.mark.parametrize("make", [redis_client, receiver_redis], ids=["client", "receiver"])
async def test_a_connection_left_on_a_replica_reconnects_to_the_master(
    group: SentinelGroup, make: Callable[[Settings], aioredis.Redis]
) -> None:
    client = make(_settings(group))
    try:
        assert await client.set("before", "1")
        master_port, replica = group.master_port(), group.replicas[0]
        assert master_port == group.master.port
        # Leave the pool's one idle connection on the replica, as one to an old master is after a
        # failover demoted it.
        pool = client.connection_pool
        conn = await pool.get_connection()
        assert isinstance(conn, SentinelManagedConnection)
        await conn.disconnect()
        await conn.connect_to(("127.0.0.1", replica.port))  # type: ignore[no-untyped-call]
        await pool.release(conn)
        refused_before = _readonly_errors(replica.port)

        assert await client.set("after", "2")

        assert _readonly_errors(replica.port) == refused_before + 1  # the write did reach the replica first
        with redis.Redis(port=group.master.port) as master:
            assert master.get("after") == b"2"
        assert (conn.host, conn.port) == ("127.0.0.1", master_port)  # the same connection, reconnected
    finally:
        await client.aclose()


@pytest.mark.parametrize("retries", [-1, 3], ids=["retrying-forever", "retrying-3"])
async def test_a_command_waiting_on_a_dead_master_lands_on_the_new_one(tmp_path: Path, retries: int) -> None:
    """The enqueue client and the API retry without limit (bounded by their own deadlines):
    redis-py's connect alone would retry the dead master's address for ever, never asking the
    sentinels again, and reconnect to it if it came back as a master."""
    with start_sentinel_group(tmp_path) as g:
        client = redis_client(_settings(g), retries=retries)
        try:
            assert await client.set("before", "1")
            old = g.master
            old.process.kill()
            old.process.wait(10)
            async with asyncio.timeout(60):  # a failover takes ~2.5 s here
                assert await client.set("after", "2")
            new_port = g.master_port()
            assert new_port not in (None, old.port)
            with redis.Redis(port=new_port) as master:
                assert master.mget("before", "after") == [b"1", b"2"]
        finally:
            await client.aclose()


async def test_a_sigkilled_master_loses_nothing_acknowledged_with_wait(tmp_path: Path) -> None:
    f = await run_failover(tmp_path, Plan(wait_replicas=1, workers=2, before_kill_s=3.0, after_failover_s=5.0))
    logs = tmp_path / "logs"
    assert f.drained, f"work never finished: see {logs}"
    assert f.lost_jobs == [], "acknowledged enqueues lost"
    assert f.lost_deliveries == [], "deliveries answered 202 and lost"
    assert f.dead == [], f"processes that would need a restart by hand: {f.dead} (see {logs})"
    assert f.errors == {}, f"failures other than 'unavailable': {dict(f.errors)}"
    # Work resumed after the failover, each path on its own: enqueues asked for after the kill
    # acknowledged, deliveries posted after it answered 202, jobs completed on the new master.
    assert f.ack_resumed_s < 60 and f.accept_resumed_s < 60 and f.completing_resumed_s < 60
