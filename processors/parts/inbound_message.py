"""InboundMessage: one chat, channel or mail message as the sink receives it, normalised from Graph.

Graph shapes read here: chatMessage (https://learn.microsoft.com/en-us/graph/api/resources/chatmessage)
and message (https://learn.microsoft.com/en-us/graph/api/resources/message).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from graphworks_core.resource_path import MessageRef, Source
from processors.parts.html_text import html_to_text


class Person(BaseModel):
    """A sender or recipient: an Entra user or app (Teams), or an email address (Outlook)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["user", "application", "device", "email"]
    id: str | None = None
    name: str | None = None
    address: str | None = None


class Recipient(Person):
    role: Literal["to", "cc", "bcc", "reply_to", "mention"]


class AttachmentInfo(BaseModel):
    """Metadata only; the bytes stay in Graph (`url` for Teams references, the id for mail)."""

    id: str | None = None
    name: str | None = None
    content_type: str | None = None
    size: int | None = None
    url: str | None = None
    is_inline: bool = False


class InboundMessage(BaseModel):
    kind: Literal["inbound_message"] = "inbound_message"
    source: Source
    resource: str  # canonical Graph path of the message
    id: str
    version: str  # changeKey (mail) or lastModifiedDateTime/etag (Teams): an edit is a new version
    tenant_id: str | None = None
    subscription_id: str | None = None
    mailbox: str | None = None
    chat_id: str | None = None
    team_id: str | None = None
    channel_id: str | None = None
    reply_to_id: str | None = None
    thread_id: str | None = None  # Teams: the root message of the thread; mail: the conversation id
    conversation_id: str | None = None
    internet_message_id: str | None = None
    sender: Person | None = None
    recipients: list[Recipient] = []
    subject: str | None = None
    body_html: str | None = None
    body_text: str = ""
    importance: str | None = None
    attachments: list[AttachmentInfo] = []
    created_at: datetime | None = None
    last_modified_at: datetime | None = None
    sent_at: datetime | None = None
    received_at: datetime | None = None
    web_url: str | None = None
    fetched_at: datetime


def _body(raw: dict[str, Any]) -> tuple[str | None, str]:
    body = raw.get("body") or {}
    content = str(body.get("content") or "")
    if str(body.get("contentType", "text")).lower() == "html":
        return content, html_to_text(content)
    return None, content.strip()


def _email(entry: Any, role: str | None = None) -> dict[str, Any] | None:
    address = (entry or {}).get("emailAddress") if isinstance(entry, dict) else None
    if not isinstance(address, dict):
        return None
    found = {"kind": "email", "name": address.get("name"), "address": address.get("address")}
    return {**found, "role": role} if role else found


def _identity(from_: Any) -> Person | None:
    if not isinstance(from_, dict):
        return None
    for kind in ("user", "application", "device"):
        who = from_.get(kind)
        if isinstance(who, dict):
            return Person(kind=kind, id=who.get("id"), name=who.get("displayName"))
    return None


def from_mail(ref: MessageRef, raw: dict[str, Any], **common: Any) -> InboundMessage:
    html, text = _body(raw)
    recipients = [
        Recipient.model_validate(r)
        for field, role in (
            ("toRecipients", "to"),
            ("ccRecipients", "cc"),
            ("bccRecipients", "bcc"),
            ("replyTo", "reply_to"),
        )
        for entry in raw.get(field) or []
        if (r := _email(entry, role)) is not None
    ]
    sender = _email(raw.get("from")) or _email(raw.get("sender"))
    attachments = [
        AttachmentInfo(
            id=a.get("id"),
            name=a.get("name"),
            content_type=a.get("contentType"),
            size=a.get("size"),
            is_inline=bool(a.get("isInline")),
        )
        for a in raw.get("attachments") or []
        if isinstance(a, dict)
    ]
    return InboundMessage(
        source="mail", resource=ref.canonical, id=str(raw.get("id") or ref.message_id),
        version=str(raw.get("changeKey") or raw.get("lastModifiedDateTime") or ""),
        mailbox=ref.user_id, conversation_id=raw.get("conversationId"), thread_id=raw.get("conversationId"),
        internet_message_id=raw.get("internetMessageId"), sender=Person.model_validate(sender) if sender else None,
        recipients=recipients, subject=raw.get("subject"), body_html=html, body_text=text,
        importance=raw.get("importance"), attachments=attachments, created_at=raw.get("createdDateTime"),
        last_modified_at=raw.get("lastModifiedDateTime"), sent_at=raw.get("sentDateTime"),
        received_at=raw.get("receivedDateTime"), web_url=raw.get("webLink"), **common,
    )  # fmt: skip


def from_chat_message(ref: MessageRef, raw: dict[str, Any], **common: Any) -> InboundMessage:
    html, text = _body(raw)
    channel = raw.get("channelIdentity") or {}
    mentions = [
        Recipient(role="mention", kind=p.kind, id=p.id, name=p.name or m.get("mentionText"))
        for m in raw.get("mentions") or []
        if isinstance(m, dict) and (p := _identity(m.get("mentioned"))) is not None
    ]
    attachments = [
        AttachmentInfo(id=a.get("id"), name=a.get("name"), content_type=a.get("contentType"), url=a.get("contentUrl"))
        for a in raw.get("attachments") or []
        if isinstance(a, dict)
    ]
    message_id = str(raw.get("id") or ref.message_id)
    reply_to = raw.get("replyToId") or ref.parent_id
    chat_id = raw.get("chatId") or ref.chat_id
    team_id, channel_id = channel.get("teamId") or ref.team_id, channel.get("channelId") or ref.channel_id
    return InboundMessage(
        source=ref.source, resource=ref.canonical, id=message_id,
        version=str(raw.get("lastModifiedDateTime") or raw.get("etag") or ""),
        chat_id=chat_id, team_id=team_id, channel_id=channel_id, reply_to_id=reply_to,
        thread_id=reply_to or message_id, conversation_id=chat_id or channel_id,
        sender=_identity(raw.get("from")), recipients=mentions, subject=raw.get("subject"),
        body_html=html, body_text=text, importance=raw.get("importance"), attachments=attachments,
        created_at=raw.get("createdDateTime"), last_modified_at=raw.get("lastModifiedDateTime"),
        sent_at=raw.get("createdDateTime"), web_url=raw.get("webUrl"), **common,
    )  # fmt: skip
