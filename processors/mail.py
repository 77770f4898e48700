"""mail: send an Outlook message from a user or shared mailbox.

Without attachments, or with small ones (together under 3 MB), one sendMail (202, no body) with
the files inline as fileAttachments. With a file of 3 MB or more (up to 150 MB): a draft, each
large file through an attachment upload session, then send (processors/parts/mail_draft.py).
https://learn.microsoft.com/en-us/graph/api/user-sendmail
https://learn.microsoft.com/en-us/graph/outlook-large-attachments
"""

from __future__ import annotations

from graphworks_core.errors import GraphHTTPError
from graphworks_core.payloads import Mail
from processors.parts.mail_draft import send_by_draft
from processors.parts.mail_message import (
    INLINE_MAX_BYTES,
    MailAccepted,
    file_attachment,
    opened_sources,
    send_mail_body,
    unknown_mailbox,
)
from worker.context import JobContext


async def send_mail(ctx: JobContext, payload: Mail) -> MailAccepted:
    async with opened_sources(ctx, payload) as files:
        if any(f.size >= INLINE_MAX_BYTES for f in files) or sum(f.size for f in files) >= INLINE_MAX_BYTES:
            return await send_by_draft(ctx, payload, files)
        attachments = [await file_attachment(spec, f) for spec, f in zip(payload.attachments, files, strict=True)]
    builder = ctx.graph.sdk.users.by_user_id(payload.mailbox).send_mail
    try:
        response = await ctx.graph.call("POST", builder, json_body=send_mail_body(payload, attachments),
                                        force_refresh=ctx.force_token_refresh)  # fmt: skip
    except GraphHTTPError as exc:
        raise unknown_mailbox(exc, payload.mailbox) from exc
    return MailAccepted(mailbox=payload.mailbox, request_id=response.headers.get("request-id"),
                        attachments=len(attachments))  # fmt: skip
