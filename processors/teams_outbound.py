"""teams_message: post a chat or channel message as the sender (delegated token).

Graph: POST /chats/{chat-id}/messages, POST /teams/{team-id}/channels/{channel-id}/messages
https://learn.microsoft.com/en-us/graph/api/chat-post-messages
https://learn.microsoft.com/en-us/graph/api/channel-post-messages
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from worker.context import JobContext
from worker.graph.client import RequestBuilder
from worker.payloads import TeamsMessage


class SentChatMessage(BaseModel):
    """The fields of Graph's chatMessage we keep."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str
    created_at: str | None = Field(None, alias="createdDateTime")
    chat_id: str | None = Field(None, alias="chatId")
    web_url: str | None = Field(None, alias="webUrl")


def message_body(payload: TeamsMessage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "body": {"contentType": payload.content_type, "content": payload.content},
        "importance": payload.importance,
    }
    if payload.subject is not None:
        body["subject"] = payload.subject
    return body


def limit_scope(payload: TeamsMessage) -> str:
    return f"chat:{payload.chat_id}" if payload.chat_id else f"channel:{payload.team_id}:{payload.channel_id}"


async def send_teams_message(ctx: JobContext, payload: TeamsMessage) -> SentChatMessage:
    sdk = ctx.graph.sdk
    builder: RequestBuilder
    if payload.chat_id:
        builder = sdk.chats.by_chat_id(payload.chat_id).messages
    else:
        assert payload.team_id and payload.channel_id  # the model guarantees one target
        builder = sdk.teams.by_team_id(payload.team_id).channels.by_channel_id(payload.channel_id).messages
    response = await ctx.graph.call(
        "POST",
        builder,
        json_body=message_body(payload),
        sender=payload.sender,
        force_refresh=ctx.force_token_refresh,
    )
    return SentChatMessage.model_validate_json(response.content)
