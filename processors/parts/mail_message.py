"""What the mail processor's two ways of sending share: the message fields, fileAttachments,
the checked attachment sources, and the 404 that names the mailbox.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel

from graphworks_core.errors import GraphHTTPError, JobRejected
from graphworks_core.payloads import Mail, MailAttachment
from processors.parts.common import explained
from processors.parts.sources import LocalFile, source_file
from worker.context import JobContext

# "If the file size is under 3 MB, do a single POST"; 3 MB to 150 MB: an upload session.
# https://learn.microsoft.com/en-us/graph/outlook-large-attachments
INLINE_MAX_BYTES = 3 * 1024 * 1024
SESSION_MAX_BYTES = 150 * 1024 * 1024


class MailAccepted(BaseModel):
    """sendMail answers 202 with no body: what we keep is that Graph accepted it, and its request id."""

    mailbox: str
    request_id: str | None
    message_id: str | None = None  # the draft's id, when sent by draft
    attachments: int = 0


def _recipients(addresses: list[str]) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": a}} for a in addresses]


def message_fields(payload: Mail) -> dict[str, Any]:
    message: dict[str, Any] = {
        "subject": payload.subject,
        "body": {"contentType": payload.body_type, "content": payload.body},
        "toRecipients": _recipients(payload.to),
        "importance": payload.importance,
    }
    if payload.cc:
        message["ccRecipients"] = _recipients(payload.cc)
    if payload.bcc:
        message["bccRecipients"] = _recipients(payload.bcc)
    if payload.reply_to:
        message["replyTo"] = _recipients(payload.reply_to)
    return message


def send_mail_body(payload: Mail, attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message = message_fields(payload)
    if attachments:
        message["attachments"] = attachments
    return {"message": message, "saveToSentItems": payload.save_to_sent_items}


async def file_attachment(spec: MailAttachment, source: LocalFile) -> dict[str, Any]:
    """A fileAttachment with contentBytes (only for files under 3 MB, so the base64 stays small)."""
    data = await asyncio.to_thread(source.path.read_bytes)
    attachment: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": spec.name or source.name,
        "contentBytes": base64.b64encode(data).decode("ascii"),
        "isInline": spec.is_inline,
    }
    if spec.content_type:
        attachment["contentType"] = spec.content_type
    if spec.content_id:
        attachment["contentId"] = spec.content_id
    return attachment


@contextlib.asynccontextmanager
async def opened_sources(ctx: JobContext, payload: Mail) -> AsyncIterator[list[LocalFile]]:
    """Every attachment's file, checked (exists, at most 150 MB) before any Graph call."""
    async with contextlib.AsyncExitStack() as stack:
        files: list[LocalFile] = []
        for n, spec in enumerate(payload.attachments, 1):
            what = f"attachment {n} ({spec.name or spec.path or spec.url})"
            source = await stack.enter_async_context(
                source_file(
                    spec.path,
                    spec.url,
                    source_dir=ctx.settings.attachment_source_dir,
                    timeout_s=ctx.settings.graph_call_timeout_s,
                    what=what,
                )
            )
            if source.size > SESSION_MAX_BYTES:
                raise JobRejected(f"{what} is {source.size} bytes; Outlook takes attachments up to 150 MB")
            files.append(source)
        yield files


def unknown_mailbox(exc: GraphHTTPError, mailbox: str) -> GraphHTTPError:
    if exc.status == 404:
        return explained(exc, f"mailbox {mailbox} was not found (no such user or shared mailbox)")
    return exc
