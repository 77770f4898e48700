"""teams_message: post a chat or channel message as the sender (delegated token).

Graph: POST /chats/{chat-id}/messages, POST /teams/{team-id}/channels/{channel-id}/messages
https://learn.microsoft.com/en-us/graph/api/chat-post-messages
https://learn.microsoft.com/en-us/graph/api/channel-post-messages
Mentions: a `mentions` array whose ids match `<at id="n">` tags in the HTML content.
Files by reference: an `attachments` entry {id: the driveItem eTag's GUID, contentType "reference",
contentUrl: its webUrl, name} plus an `<attachment id="...">` tag in the content.
https://learn.microsoft.com/en-us/graph/api/chatmessage-post#example-4-send-a-message-with-file-attachment-in-it
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from graphworks_core.errors import GraphHTTPError, JobRejected
from graphworks_core.payloads import TEAMS_MAX_BODY_BYTES, TeamsFileReference, TeamsMessage
from processors.parts.common import RefreshOnce, explained
from worker.context import JobContext
from worker.graph.client import RequestBuilder
from worker.graph.responses import reply_model

ETAG_GUID = re.compile(r"\{?([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\}?")


class SentChatMessage(BaseModel):
    """The fields of Graph's chatMessage we keep."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str
    created_at: str | None = Field(None, alias="createdDateTime")
    chat_id: str | None = Field(None, alias="chatId")
    web_url: str | None = Field(None, alias="webUrl")


class _DriveItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    webUrl: str | None = None  # Graph's field names
    eTag: str | None = None


def reference_attachment(ref_id: str, web_url: str, name: str | None) -> dict[str, Any]:
    return {"id": ref_id, "contentType": "reference", "contentUrl": web_url, "name": name}


def message_body(payload: TeamsMessage, attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The chatMessage Graph is sent; `attachments` are the resolved reference attachments."""
    content, content_type = payload.content, payload.content_type
    attachments = attachments or []
    if attachments:
        if content_type == "text":  # the <attachment> tags only work in HTML
            content, content_type = html.escape(content), "html"
        for attachment in attachments:
            if f'<attachment id="{attachment["id"]}">' not in content:
                content += f'<attachment id="{attachment["id"]}"></attachment>'
    body: dict[str, Any] = {
        "body": {"contentType": content_type, "content": content},
        "importance": payload.importance,
    }
    if payload.subject is not None:
        body["subject"] = payload.subject
    if payload.mentions:
        body["mentions"] = [
            {
                "id": m.id,
                "mentionText": m.text,
                "mentioned": {
                    "user": {"id": m.user_id, "displayName": m.display_name or m.text, "userIdentityType": "aadUser"}
                },
            }
            for m in payload.mentions
        ]
    if attachments:
        body["attachments"] = attachments
    return body


def check_size(body: dict[str, Any]) -> None:
    """Teams refuses a message over ~28 KB, counting its HTML, mentions and attachment cards; say so
    before any call. https://learn.microsoft.com/en-us/microsoftteams/limits-specifications-teams#chat"""
    size = len(json.dumps(body, separators=(",", ":")).encode())
    if size > TEAMS_MAX_BODY_BYTES:
        raise JobRejected(
            f"the message is {size} bytes with its mentions and attachments, over Teams' {TEAMS_MAX_BODY_BYTES} "
            "byte limit; shorten it or send the content as a file"
        )


def _direct(ref: TeamsFileReference) -> dict[str, Any] | None:
    if ref.id and ref.web_url:
        return reference_attachment(ref.id, ref.web_url, ref.name)
    return None


async def _resolve(
    ctx: JobContext, ref: TeamsFileReference, sender: str | None, refresh: RefreshOnce
) -> dict[str, Any]:
    """A driveItem's reference attachment: the GUID in its eTag, its webUrl and name."""
    assert ref.drive_id and ref.item_id
    builder = ctx.graph.sdk.drives.by_drive_id(ref.drive_id).items.by_drive_item_id(ref.item_id)
    try:
        response = await ctx.graph.call("GET", builder, sender=sender, force_refresh=refresh())
    except GraphHTTPError as exc:
        if exc.status == 404:
            raise explained(exc, f"the file {ref.item_id} in drive {ref.drive_id} to attach was not found") from exc
        raise
    item = reply_model(_DriveItem, response)
    match = ETAG_GUID.search(item.eTag or "")
    if match is None or not item.webUrl:
        raise JobRejected(f"the file {ref.item_id} has no eTag GUID or webUrl to share it by reference")
    return reference_attachment(match.group(1), item.webUrl, ref.name or item.name)


async def send_teams_message(ctx: JobContext, payload: TeamsMessage) -> SentChatMessage:
    sdk = ctx.graph.sdk
    sender = payload.sender or ctx.settings.graph_default_sender
    builder: RequestBuilder
    if payload.chat_id:
        builder = sdk.chats.by_chat_id(payload.chat_id).messages
        target = f"chat {payload.chat_id}"
    else:
        assert payload.team_id and payload.channel_id  # the model guarantees one target
        builder = sdk.teams.by_team_id(payload.team_id).channels.by_channel_id(payload.channel_id).messages
        target = f"channel {payload.channel_id} of team {payload.team_id}"
    direct = [a for a in (_direct(r) for r in payload.attachments) if a is not None]
    check_size(message_body(payload, direct))  # everything known so far, before any call
    refresh = RefreshOnce(ctx)
    resolved = list(direct)
    for ref in payload.attachments:
        if _direct(ref) is None:
            resolved.append(await _resolve(ctx, ref, sender, refresh))
    body = message_body(payload, resolved)
    check_size(body)
    try:
        response = await ctx.graph.call("POST", builder, json_body=body, sender=sender, force_refresh=refresh())
    except GraphHTTPError as exc:
        if exc.status == 404:
            raise explained(exc, f"{target} was not found, or the sender is not a member") from exc
        raise
    return reply_model(SentChatMessage, response)
