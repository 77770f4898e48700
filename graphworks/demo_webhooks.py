"""The demo's second act: a Graph subscription, change notifications through the webhook receiver,
the notification_batch and inbound processors, and a delta sync, all into the inbound stream."""

from __future__ import annotations

import json

import httpx
import redis.asyncio as aioredis
from rich.console import Console

from graphsim.delta_resources import default_contacts_folder
from graphsim.server import SimServer
from graphworks_core import keys
from graphworks_core.settings import Settings
from worker.client import GraphworksClient
from worker.runner import Runner
from worker.subscriptions.renewal import build_manager

MAILBOX = "ops@contoso.com"


async def script_inbound(
    console: Console, settings: Settings, redis: aioredis.Redis, sim: SimServer, runner: Runner, receiver_url: str
) -> None:
    """Subscribe to a mailbox, have graphsim notify twice for one new message, and sync contacts."""
    message_id = sim.state.seed_mail_message(
        MAILBOX,
        {"subject": "Invoice 1042", "body": {"contentType": "html", "content": "<p>Please <b>pay</b></p>"},
         "from": {"emailAddress": {"address": "vendor@fabrikam.com"}}},
    )  # fmt: skip
    manager = build_manager(runner.graph, redis, settings, runner.clock, runner.queue)
    record = await manager.create(f"users/{MAILBOX}/messages", "created", f"{receiver_url}/webhooks/graph",
                                  lifecycle_url=f"{receiver_url}/webhooks/graph/lifecycle")  # fmt: skip
    console.print(f"subscription {record.id} created: graphsim ran the validation handshake against the receiver")
    item = {"resource": f"Users/{MAILBOX}/Messages/{message_id}", "resourceData": {"id": message_id}}
    async with httpx.AsyncClient(timeout=10) as http:
        for _ in range(2):  # Graph delivers at least once: the second delivery must not duplicate
            r = await http.post(f"{sim.root_url}/_sim/subscriptions/{record.id}/notify", json={"items": [item]})
            r.raise_for_status()
    console.print("graphsim delivered the same change notification twice; the receiver answered 202 to each")

    for name in ("Ada Lovelace", "Alan Turing", "Grace Hopper"):
        sim.state.delta.upsert(f"contacts:{MAILBOX}:{default_contacts_folder(MAILBOX)}", {"displayName": name})
    await GraphworksClient(redis, settings).sync(resource="contacts", owner=MAILBOX)
    console.print("enqueued a delta sync of 3 contacts")


async def show_inbound(console: Console, redis: aioredis.Redis) -> int:
    entries = await redis.xrange(keys.INBOUND_STREAM)
    console.print(f"\n[bold]inbound stream {keys.INBOUND_STREAM}[/bold]: {len(entries)} entries")
    for _, fields in entries:
        data = json.loads(fields[b"data"])
        what = data.get("subject") or data.get("item", {}).get("displayName") or data.get("kind", "")
        label = f"sync {data['change']}" if data.get("kind") == "sync_change" else "message"
        console.print(f"  {label:<14} {str(what)[:60]}")
    return len(entries)
