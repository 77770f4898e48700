"""mail: send an Outlook message from a user or shared mailbox with sendMail (202, no body).

Graph: POST /users/{id | userPrincipalName}/sendMail
https://learn.microsoft.com/en-us/graph/api/user-sendmail
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from worker.context import JobContext
from worker.payloads import Mail


class MailAccepted(BaseModel):
    """sendMail answers 202 with no body: what we keep is that Graph accepted it, and its request id."""

    mailbox: str
    request_id: str | None


def _recipients(addresses: list[str]) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": a}} for a in addresses]


def send_mail_body(payload: Mail) -> dict[str, Any]:
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
    return {"message": message, "saveToSentItems": payload.save_to_sent_items}


def limit_scope(payload: Mail) -> str:
    return f"mailbox:{payload.mailbox}"


async def send_mail(ctx: JobContext, payload: Mail) -> MailAccepted:
    builder = ctx.graph.sdk.users.by_user_id(payload.mailbox).send_mail
    response = await ctx.graph.call(
        "POST", builder, json_body=send_mail_body(payload), force_refresh=ctx.force_token_refresh
    )
    return MailAccepted(mailbox=payload.mailbox, request_id=response.headers.get("request-id"))
