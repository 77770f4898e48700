"""No secret is ever written down: a demo-sized workload on the in-process pipeline (a real Redis,
graphsim over HTTP, the receiver served by uvicorn, every logger at DEBUG), then every Redis key and
value, every log line and the dead-letter export (`graphworks dlq export`, a real process) are
searched for the static token, the client secret, the refresh and access tokens, every clientState
and the decrypted content of rich notifications: 0 hits.

The workload: plain sends (app-only, the static token), a Teams send as a delegated sender whose
first post meets a 401 (the token is refreshed once, MSAL redeeming the stored refresh token with
the client secret against graphsim), one that meets 401s until it is dead-lettered, one whose
sender's refresh token Entra refuses (invalid_grant, dead-lettered), a mail Graph
rejects (dead-lettered), a subscription with rich resource data and one without, and graphsim's
deliveries of their notifications (encrypted content decrypted by the batch processor), each twice.
A self-check first proves the search finds a sentinel in each place it looks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from graphsim.faults import Fault
from graphsim.server import SimServer
from graphsim.subscriptions import SIM_TENANT_ID
from graphworks_core.errors import ErrorClass, PayloadInvalid
from tests.integration.conftest import Pipeline, eventually, running_pipeline
from tests.processors.test_credentials import Loopback
from tests.webhooks.conftest import make_key_pem, receiver_server, webhook_settings
from webhooks.app import ReceiverApp
from worker.deadletter.models import DeadLetterEntry
from worker.graph.auth import RoutingTokenProvider, StaticTokenProvider
from worker.graph.client import GraphClient
from worker.graph.delegated import StoredTokens, delegated_provider_from
from worker.subscriptions.renewal import build_manager

pytestmark = pytest.mark.slow

STATIC_TOKEN = "static-token-7Qm2-SENTINEL-app-only"
CLIENT_SECRET = "client-secret-X9v4-SENTINEL-entra"
DECRYPTED = "decrypted-words-K3p8-SENTINEL-rich"
REVOKED = "rt.revoked-T6w0-SENTINEL-refresh"
SENDER, REVOKED_SENDER = "ann@contoso.com", "bob@contoso.com"
MAILBOX = "ops@contoso.com"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LIMIT_S = 60.0  # a generous safety limit for the pipeline to settle on a loaded machine


class Captured(logging.Handler):
    """Every record of every logger, formatted with its arguments, exception and stack."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    # Loggers that set their own level (uvicorn's, MSAL's) are opened to DEBUG too.
    opened = {name: lg.level for name, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    for name in opened:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for name, old in opened.items():
            logging.getLogger(name).setLevel(old)


@pytest.fixture
async def secrets_pipeline(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer, tmp_path: Path, logs: Captured
) -> AsyncIterator[Pipeline]:
    make_key_pem(tmp_path)
    settings = webhook_settings(
        redis_url, graphsim, tmp_path,
        graph_static_token=STATIC_TOKEN, graph_tenant_id=SIM_TENANT_ID, graph_client_secret=CLIENT_SECRET,
        graph_token_encryption_key=Fernet.generate_key().decode(),
    )  # fmt: skip
    async with running_pipeline(redis, graphsim, settings) as pipe:
        delegated = delegated_provider_from(settings, redis, http_client=Loopback(graphsim.root_url), clock=pipe.clock)
        old = pipe.runner.graph
        tokens = RoutingTokenProvider(StaticTokenProvider(STATIC_TOKEN), delegated)
        pipe.runner.graph = GraphClient(graphsim.base_url, tokens)
        await old.close()
        yield pipe


# -- the search --------------------------------------------------------------------------------------


async def redis_dump(redis: aioredis.Redis) -> list[tuple[bytes, bytes]]:
    """(key, everything it holds) for every key: strings, hashes, lists, sets, zsets and streams."""
    out: list[tuple[bytes, bytes]] = []
    async for key in redis.scan_iter(count=500):
        kind = (await redis.type(key)).decode()
        parts: list[bytes] = []
        if kind == "string":
            parts = [await redis.get(key) or b""]
        elif kind == "hash":
            parts = [b for kv in (await redis.hgetall(key)).items() for b in kv]
        elif kind == "list":
            parts = list(await redis.lrange(key, 0, -1))
        elif kind == "set":
            parts = list(await redis.smembers(key))
        elif kind == "zset":
            parts = [m for m, _ in await redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            parts = [b for _, fields in await redis.xrange(key) for kv in fields.items() for b in kv]
        elif kind != "none":  # expired between SCAN and TYPE
            raise AssertionError(f"{key!r} is a {kind}: the dump does not read that type")
        out.append((key, b"\n".join(parts)))
    return out


def export_dead_letters(settings_env: dict[str, str], out: Path) -> str:
    """`graphworks dlq export --out FILE` in its own process: the operators' export."""
    done = subprocess.run([sys.executable, "-m", "graphworks", "dlq", "export", "--out", str(out)], env=settings_env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out.read_text()


def hits(secrets: dict[str, str], dump: list[tuple[bytes, bytes]], log_lines: list[str], export: str) -> list[str]:
    found = []
    for name, secret in secrets.items():
        needle = secret.encode()
        found += [f"{name} in Redis key {key!r}" for key, value in dump if needle in key or needle in value]
        found += [f"{name} in a log line: {line[:300]}" for line in log_lines if secret in line]
        found += [f"{name} in the dead-letter export" for _ in range(export.count(secret))]
    return found


async def look_everywhere(pipe: Pipeline, logs: Captured, secrets: dict[str, str], tmp: Path) -> list[str]:
    env = {**os.environ, "REDIS_URL": str(pipe.settings.redis_url)}
    env.pop("GRAPH_STATIC_TOKEN", None)
    export = await asyncio.to_thread(export_dead_letters, env, tmp / "dlq.jsonl")
    return hits(secrets, await redis_dump(pipe.redis), list(logs.lines), export)


# -- the workload ------------------------------------------------------------------------------------


async def settle(pipe: Pipeline, done: list[tuple[str, int]]) -> None:
    """Run until each (type, n) has n finished jobs and nothing is queued or running; a job scheduled
    for later (a retry) is brought due by moving the fake clock, never by waiting."""

    async def finished() -> bool:
        snap = await pipe.stats.snapshot()
        if snap.scheduled:
            rows = await pipe.scheduled()
            if rows:
                pipe.clock.set(max(pipe.clock.now(), rows[0][1]))
        ended = {t: c.get("completed", 0) + c.get("dead_lettered", 0) for t, c in snap.by_type.items()}
        running = await pipe.redis.keys("arq:in-progress:*")
        return all(ended.get(t, 0) >= n for t, n in done) and not snap.queued and not snap.scheduled and not running

    await eventually(finished, timeout_s=LIMIT_S, what=f"the workload to settle: {done}")


async def deliver(sim: SimServer, sub_id: str, item: dict[str, object]) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{sim.root_url}/_sim/subscriptions/{sub_id}/notify", json={"items": [item]})
    r.raise_for_status()
    assert r.json()["status"] == 202, r.json()


async def workload(pipe: Pipeline, tmp: Path) -> dict[str, str]:
    """Runs the demo-sized mix; returns every secret it put in play, by name."""
    sim, client = pipe.sim, pipe.client
    state = sim.state
    delegated = pipe.runner.graph.tokens.delegated  # type: ignore[attr-defined]
    refresh_token = state.identity.issue_refresh_token(SENDER)
    await delegated.store.put(SENDER, StoredTokens(refresh_token=refresh_token))
    await delegated.store.put(REVOKED_SENDER, StoredTokens(refresh_token=REVOKED))  # Entra answers invalid_grant
    state.add_fault(Fault(method="POST", path="/chats/19:refresh/messages", status=401))  # once: refreshed, sent
    state.add_fault(Fault(method="POST", path="/chats/19:locked/messages", status=401, times=None))
    state.add_fault(Fault(method="POST", path="/users/rejects@contoso.com/sendMail", status=400, times=None,
                          graph_code="ErrorInvalidRecipients", message="Recipient is not valid."))  # fmt: skip
    for i in range(5):
        await client.send_teams_message(chat_id=f"19:team-{i}", content=f"Build {i} passed")
        await client.send_mail(mailbox=MAILBOX, to=[f"dev{i}@contoso.com"], subject=f"Report {i}", body="ok")
    await client.send_teams_message(chat_id="19:refresh", content="meets a 401 once", sender=SENDER)
    await client.send_teams_message(chat_id="19:locked", content="meets 401s", sender=SENDER)
    await client.send_teams_message(chat_id="19:team-0", content="no token to be had", sender=REVOKED_SENDER)
    await client.send_mail(mailbox="rejects@contoso.com", to=["a@contoso.com"], subject="no", body="400")
    with pytest.raises(PayloadInvalid):
        await client.send_mail(mailbox=MAILBOX, to=["not-an-address"], subject="x", body="y")
    await settle(pipe, [("teams_message", 8), ("mail", 6)])

    receiver = receiver_server(ReceiverApp(pipe.settings))
    try:
        manager = build_manager(pipe.runner.graph, pipe.redis, pipe.settings, pipe.clock, pipe.runner.queue)
        notify, lifecycle = f"{receiver.url}/webhooks/graph", f"{receiver.url}/webhooks/graph/lifecycle"
        plain = await manager.create(f"users/{MAILBOX}/messages", "created", notify, lifecycle_url=lifecycle)
        rich = await manager.create("chats/19:abc@thread.v2/messages", "created", notify, lifecycle_url=lifecycle,
                                    include_resource_data=True)  # fmt: skip
        message_id = state.seed_mail_message(MAILBOX, {"subject": "Invoice 1042", "body": {"content": "pay"}})
        resource = "chats('19:abc@thread.v2')/messages('1612')"
        content = {"id": "1612", "body": {"contentType": "text", "content": DECRYPTED}}
        for _ in range(2):  # Graph delivers at least once
            await deliver(sim, plain.id, {"resource": f"Users/{MAILBOX}/Messages/{message_id}",
                                          "resourceData": {"id": message_id}})  # fmt: skip
            await deliver(sim, rich.id, {"resource": resource, "resourceData": {"id": "1612"}, "content": content})
        await settle(pipe, [("notification_batch", 4)])
    finally:
        receiver.stop()

    grants = state.identity.grants()
    assert len(grants) >= 2, "the 401 forced a refresh: a second grant"
    assert {r.status for r in pipe.graph_requests() if r.path == "/chats/19:refresh/messages"} == {401, 201}
    assert len(await pipe.dead_letters()) >= 3  # the 400, the 401s, the revoked refresh token
    found = {
        "static token": STATIC_TOKEN,
        "client secret": CLIENT_SECRET,
        "decrypted content": DECRYPTED,
        "refresh token (stored)": refresh_token,
        "refresh token (revoked)": REVOKED,
    }
    for i, g in enumerate(grants):
        found[f"refresh token (rotated, grant {i})"] = g.refresh_token
        found[f"access token (grant {i})"] = g.access_token
    for sub in state.subscriptions.all():
        found[f"clientState of {sub['id']}"] = sub["clientState"]
    assert sum(1 for name in found if name.startswith("clientState")) >= 2
    assert all(len(s) >= 12 for s in found.values()), "a short secret would match by chance"
    return found


async def test_no_secret_is_in_redis_the_logs_or_the_dead_letter_export(
    secrets_pipeline: Pipeline, logs: Captured, tmp_path: Path
) -> None:
    pipe = secrets_pipeline
    # The search finds what is there: a sentinel in a scratch hash, a log line and a dead letter's note.
    word = "self-check-Z8r1-SENTINEL"
    await pipe.redis.hset("graphworks:test:scratch", "f", f"x{word}x")
    logging.getLogger("graphworks.test").debug("a line with %s", word)
    entry = DeadLetterEntry(id="self-check", job_id="self-check", type="mail", payload={}, reason="self-check",
                            error_class=ErrorClass.UNKNOWN, note=word, first_failure_at=T0, last_failure_at=T0,
                            dead_lettered_at=T0)  # fmt: skip
    await pipe.runner.dlq.put(entry)
    found = await look_everywhere(pipe, logs, {"sentinel": word}, tmp_path)
    assert sum("in Redis key" in f for f in found) >= 2, found  # the scratch hash, the entry
    assert any("a log line" in f for f in found) and any("dead-letter export" in f for f in found), found
    await pipe.redis.delete("graphworks:test:scratch")
    await pipe.runner.dlq.remove("self-check")
    assert await look_everywhere(pipe, logs, {"sentinel": word}, tmp_path) == [f for f in found if "log line" in f]
    logs.lines.clear()

    secrets = await workload(pipe, tmp_path)
    assert len(logs.lines) > 100, "every logger at DEBUG wrote what it had"
    leaks = await look_everywhere(pipe, logs, secrets, tmp_path)
    assert leaks == [], "\n".join(leaks)
