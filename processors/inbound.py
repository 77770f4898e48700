"""inbound: fetch the message a notification names, normalise it, hand it to the sink once.

A message deleted before we fetch it (404, or a Teams message with deletedDateTime) is recorded
in a capped stream and a counter, and the job completes: Graph notifies about messages that can
be gone a moment later, and retrying will not bring them back. Duplicate notifications (Graph
delivers at least once) and re-fetches of the same version produce one sink item: a marker per
(message, version) with a TTL.
https://learn.microsoft.com/en-us/graph/api/chatmessage-get
https://learn.microsoft.com/en-us/graph/api/message-get
https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks (at-least-once delivery)
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from graphworks_core import keys
from graphworks_core.clock import utc
from graphworks_core.errors import GraphHTTPError, JobRejected
from graphworks_core.payloads import Inbound
from graphworks_core.resource_path import MessageRef, parse_message_resource
from processors.parts.inbound_message import InboundMessage, from_chat_message, from_mail
from worker.context import JobContext
from worker.graph.client import RequestBuilder
from worker.graph.responses import reply_json, unexpected_reply
from worker.sinks import SinkRecord, sink_for
from worker.sinks.delivery import deliver_once

log = logging.getLogger("graphworks.inbound")

GONE_STREAM_MAXLEN = 10_000
# Outlook's 404 codes for a mailbox (not a message) that is not there: bad input, not a deletion.
MAILBOX_MISSING = frozenset({"ErrorInvalidUser", "MailboxNotEnabledForRESTAPI", "MailboxNotFound"})
# Attachment metadata only: contentBytes would put whole files into the sink.
MAIL_EXPAND = "attachments($select=id,name,contentType,size,isInline)"


class InboundResult(BaseModel):
    status: Literal["delivered", "duplicate", "gone"]
    source: str
    message_id: str


class _Built:
    """An SDK request builder's template with extra query values (the SDK's own query classes
    would cost a model import storm for one `$expand`)."""

    def __init__(self, builder: RequestBuilder, **query: str) -> None:
        self.url_template = builder.url_template
        self.path_parameters = {**builder.path_parameters, **{f"%24{k}": v for k, v in query.items()}}


def _builder(ctx: JobContext, ref: MessageRef) -> RequestBuilder:
    sdk = ctx.graph.sdk
    if ref.source == "chat":
        return sdk.chats.by_chat_id(ref.chat_id or "").messages.by_chat_message_id(ref.message_id)
    if ref.source == "channel":
        channel = sdk.teams.by_team_id(ref.team_id or "").channels.by_channel_id(ref.channel_id or "")
        if ref.parent_id:
            return channel.messages.by_chat_message_id(ref.parent_id).replies.by_chat_message_id1(ref.message_id)
        return channel.messages.by_chat_message_id(ref.message_id)
    return _Built(sdk.users.by_user_id(ref.user_id or "").messages.by_message_id(ref.message_id), expand=MAIL_EXPAND)


async def fetch_inbound(ctx: JobContext, payload: Inbound) -> InboundResult:
    ref = parse_message_resource(payload.resource)
    try:
        response = await ctx.graph.call("GET", _builder(ctx, ref), force_refresh=ctx.force_token_refresh)
    except GraphHTTPError as exc:
        if exc.status != 404:
            raise
        if exc.graph_code in MAILBOX_MISSING:
            raise JobRejected(
                f"inbound {ref.canonical}: mailbox {ref.user_id} does not exist ({exc.graph_code})"
            ) from exc
        return await _gone(ctx, ref, payload, f"404 {exc.graph_code or ''}".strip(), exc.request_id)
    raw: dict[str, Any] = reply_json(response)
    if raw.get("deletedDateTime"):
        return await _gone(ctx, ref, payload, "soft-deleted", response.headers.get("request-id"))
    common = {"tenant_id": payload.tenant_id, "subscription_id": payload.subscription_id,
              "fetched_at": utc(ctx.clock.now())}  # fmt: skip
    try:
        message = from_mail(ref, raw, **common) if ref.source == "mail" else from_chat_message(ref, raw, **common)
    except ValidationError as exc:  # Graph's message, not our payload, did not fit
        raise unexpected_reply(response, f"which does not fit InboundMessage ({exc.errors()[0]['msg']})") from exc
    delivered = await deliver_once(
        ctx.redis, sink_for(ctx.settings), SinkRecord(message.model_dump_json()),
        marker=keys.inbound_seen(_digest(message)), ttl_s=ctx.settings.inbound_dedup_ttl_s,
        owner=ctx.envelope.id, claim_ttl_s=math.ceil(ctx.settings.worker_job_timeout_s * 2),
    )  # fmt: skip
    counter = "inbound.delivered" if delivered else "inbound.duplicates"
    await ctx.redis.hincrby(keys.PROCESSOR_STATS, counter, 1)  # type: ignore[misc]  # redis-py's sync|async union
    return InboundResult(status="delivered" if delivered else "duplicate", source=ref.source, message_id=message.id)


def _digest(message: InboundMessage) -> str:
    """The dedup identity: where the message lives, its id and its version (an edit is new)."""
    ident = f"{message.source}\n{message.resource}\n{message.id}\n{message.version}"
    return hashlib.sha256(ident.encode()).hexdigest()[:40]


async def _gone(ctx: JobContext, ref: MessageRef, payload: Inbound, why: str, request_id: str | None) -> InboundResult:
    record = {"resource": ref.canonical, "source": ref.source, "message_id": ref.message_id, "why": why,
              "request_id": request_id or "", "subscription_id": payload.subscription_id or "",
              "at": utc(ctx.clock.now()).isoformat()}  # fmt: skip
    async with ctx.redis.pipeline(transaction=True) as pipe:
        pipe.xadd(keys.INBOUND_GONE, record, maxlen=GONE_STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
        pipe.hincrby(keys.PROCESSOR_STATS, "inbound.gone", 1)
        await pipe.execute()
    log.info("inbound %s: gone before the fetch (%s); recorded, not retried", ref.canonical, why)
    return InboundResult(status="gone", source=ref.source, message_id=ref.message_id)
