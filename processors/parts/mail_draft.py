"""mail with attachments of 3 MB or more: create a draft, attach, send; resumable across retries.

1. POST /users/{id}/messages creates the draft (its id kept in the job's upload progress in Redis);
2. each file under 3 MB: POST .../messages/{id}/attachments with contentBytes; each larger one:
   POST .../attachments/createUploadSession, then PUT fragments under 4 MB to the upload URL
   (no Authorization header), resuming from nextExpectedRanges after a failure;
3. POST /users/{id}/messages/{id}/send (202).
A retry skips whatever the progress says is done. A sent draft is always saved to Sent Items
(Graph's send has no saveToSentItems switch).
https://learn.microsoft.com/en-us/graph/outlook-large-attachments
https://learn.microsoft.com/en-us/graph/api/attachment-createuploadsession
https://learn.microsoft.com/en-us/graph/api/message-send
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphworks_core.errors import GraphHTTPError
from graphworks_core.payloads import Mail, MailAttachment
from processors.parts.common import RefreshOnce
from processors.parts.mail_message import (
    INLINE_MAX_BYTES,
    MailAccepted,
    file_attachment,
    message_fields,
    unknown_mailbox,
)
from processors.parts.sources import LocalFile
from processors.parts.upload_session import UploadProgress, upload_in_chunks
from worker.context import JobContext
from worker.graph.responses import reply_str

if TYPE_CHECKING:
    from msgraph.generated.users.item.messages.item.attachments.attachments_request_builder import (
        AttachmentsRequestBuilder,
    )


async def send_by_draft(ctx: JobContext, payload: Mail, files: list[LocalFile]) -> MailAccepted:
    graph = ctx.graph
    user = graph.sdk.users.by_user_id(payload.mailbox)
    progress = UploadProgress(ctx.redis, ctx.envelope.id, ctx.settings.upload_progress_ttl_s)
    refresh = RefreshOnce(ctx)
    draft_id = await progress.get("draft_id")
    if draft_id is None:
        try:
            response = await graph.call("POST", user.messages, json_body=message_fields(payload),
                                        force_refresh=refresh())  # fmt: skip
        except GraphHTTPError as exc:
            raise unknown_mailbox(exc, payload.mailbox) from exc
        draft_id = reply_str(response, "id")
        await progress.set({"draft_id": draft_id})
    message = user.messages.by_message_id(draft_id)

    for n, (spec, source) in enumerate(zip(payload.attachments, files, strict=True)):
        if await progress.get(f"done:{n}"):
            continue
        if source.size < INLINE_MAX_BYTES:
            await graph.call("POST", message.attachments, json_body=await file_attachment(spec, source),
                             force_refresh=refresh())  # fmt: skip
        else:
            await _upload(ctx, progress, message.attachments, n, spec, source, refresh)
        await progress.set({f"done:{n}": 1})

    response = await graph.call("POST", message.send, force_refresh=refresh())
    await progress.clear()
    return MailAccepted(mailbox=payload.mailbox, request_id=response.headers.get("request-id"),
                        message_id=draft_id, attachments=len(files))  # fmt: skip


async def _upload(
    ctx: JobContext,
    progress: UploadProgress,
    attachments: AttachmentsRequestBuilder,
    n: int,
    spec: MailAttachment,
    source: LocalFile,
    refresh: RefreshOnce,
) -> None:
    async def new_session() -> str:
        item: dict[str, object] = {"attachmentType": "file", "name": spec.name or source.name, "size": source.size,
                                   "isInline": spec.is_inline}  # fmt: skip
        if spec.content_type:
            item["contentType"] = spec.content_type
        if spec.content_id:
            item["contentId"] = spec.content_id
        response = await ctx.graph.call("POST", attachments.create_upload_session,
                                        json_body={"AttachmentItem": item}, force_refresh=refresh())  # fmt: skip
        return reply_str(response, "uploadUrl")

    await upload_in_chunks(ctx.graph, progress, f"att{n}", source, ctx.settings.mail_upload_chunk_bytes, new_session)
