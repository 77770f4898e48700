"""REDIS_WAIT_REPLICAS on a real master and replica: an acknowledged enqueue is on the replica when
it returns; with too few replicas the enqueue is unavailable (the client's QueueUnavailable, the
receiver's 503); with 0 not one WAIT is sent, and a batch costs one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio as aioredis

from graphworks.embedded_redis import EmbeddedRedis, start_redis
from graphworks_core import keys
from graphworks_core.clock import FakeClock
from graphworks_core.errors import QueueUnavailable
from graphworks_core.settings import Settings, load_settings
from tests.webhooks.helpers import item, register
from webhooks.receiver import Receiver, Unavailable
from webhooks.validation import Delivery
from worker.client import GraphworksClient, JobRequest
from worker.queue import JobQueue, NotReplicated
from worker.subscriptions.counters import Counters
from worker.subscriptions.registry import SubscriptionRegistry

DEADLINE_S = 30.0
MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "s", "body": "b"}


def _in_sync(replica_port: int) -> bool:
    """The replica has loaded the master's data and follows its stream (its own view, not the master's)."""
    with redis.Redis(port=replica_port, socket_timeout=2) as client:
        info = client.info("replication")
    return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")


@pytest.fixture(scope="module")
def replicated() -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis]]:
    """A master and one replica of it, in sync."""
    master = start_redis(extra_args=["--repl-diskless-sync-delay", "0"])
    replica = start_redis(extra_args=["--replicaof", "127.0.0.1", str(master.port)])
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not _in_sync(replica.port):
            assert time.monotonic() < deadline, "the replica never came online"
            time.sleep(0.05)
        yield master, replica
    finally:
        replica.stop()
        master.stop()


def _waits(url: str) -> int:
    """WAIT commands the server has run so far."""
    with redis.Redis.from_url(url) as client:
        return int(client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))


@pytest.fixture
async def wait_client(replicated: tuple[EmbeddedRedis, EmbeddedRedis]) -> AsyncIterator[GraphworksClient]:
    settings = load_settings(
        redis_url=replicated[0].url, redis_wait_replicas=1, redis_wait_timeout_s=2.0, webhook_persist_deadline_s=2.4
    )  # generous: a loaded machine
    async with GraphworksClient.from_settings(settings) as gw:
        yield gw


async def test_an_acknowledged_enqueue_is_on_the_replica_when_it_returns(
    replicated: tuple[EmbeddedRedis, EmbeddedRedis], wait_client: GraphworksClient
) -> None:
    master, replica = replicated
    before = _waits(master.url)
    on_replica = aioredis.Redis.from_url(replica.url)
    try:
        for _ in range(30):
            job_id = await wait_client.enqueue("mail", MAIL)
            # Read at once from the replica: WAIT returned only after it acknowledged the write.
            assert await on_replica.exists(keys.job_status(job_id)) == 1
    finally:
        await on_replica.aclose()
    assert _waits(master.url) - before == 30


async def test_a_batch_costs_one_wait(
    replicated: tuple[EmbeddedRedis, EmbeddedRedis], wait_client: GraphworksClient
) -> None:
    before = _waits(replicated[0].url)
    ids = await wait_client.enqueue_many([JobRequest(type="mail", payload=MAIL) for _ in range(300)])
    assert len(set(ids)) == 300
    assert _waits(replicated[0].url) - before == 1


def _unreplicated(redis_url: str, **extra: object) -> Settings:
    return load_settings(redis_url=redis_url, redis_wait_replicas=1, redis_wait_timeout_s=0.05, **extra)


async def test_too_few_replicas_is_queue_unavailable(redis: aioredis.Redis, redis_url: str) -> None:
    # The session's redis-server has no replica: WAIT 1 answers 0 after its timeout.
    async with GraphworksClient.from_settings(_unreplicated(redis_url)) as gw:
        with pytest.raises(QueueUnavailable, match="0 of 1 replicas acknowledged the write within 50 ms") as caught:
            await gw.enqueue("mail", MAIL, idempotency_key="k-1")
    assert isinstance(caught.value.__cause__, NotReplicated)
    # The job is on the master (it may run): a retry with the same key cannot make a second one.
    assert await redis.exists(keys.idempotency("k-1")) == 1


async def test_no_wait_is_sent_when_no_replica_is_asked_for(redis: aioredis.Redis, redis_url: str) -> None:
    before = _waits(redis_url)
    async with GraphworksClient.from_settings(load_settings(redis_url=redis_url)) as gw:
        await gw.enqueue("mail", MAIL)
        await gw.enqueue_many([JobRequest(type="mail", payload=MAIL) for _ in range(10)])
    assert _waits(redis_url) - before == 0


async def test_the_receiver_answers_503_when_too_few_replicas_hold_a_delivery(redis: aioredis.Redis) -> None:
    secret = await register(redis, "sub-a")
    queue = JobQueue(redis, FakeClock(), wait_replicas=1, wait_timeout_ms=50)
    receiver = Receiver(SubscriptionRegistry(redis), queue, Counters(), None, 2.0)
    with pytest.raises(Unavailable, match="NotReplicated"):
        await receiver.handle(Delivery(items=[item("sub-a", secret)], validation_tokens=[]))


async def test_the_worker_side_queue_never_waits(redis: aioredis.Redis, redis_url: str) -> None:
    """Only what answers a caller outside waits: the worker's own puts (retries, fan-out) do not."""
    settings = _unreplicated(redis_url)
    assert JobQueue.from_settings(settings, redis, FakeClock()).wait_replicas == 0
    assert JobQueue.from_settings(settings, redis, FakeClock(), acknowledged=True).wait_replicas == 1
