"""Outlook drafts: create, attach (small POST or upload session), send.

https://learn.microsoft.com/en-us/graph/api/user-post-messages
https://learn.microsoft.com/en-us/graph/api/message-post-attachments
https://learn.microsoft.com/en-us/graph/api/attachment-createuploadsession
https://learn.microsoft.com/en-us/graph/api/message-send
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from graphsim import resources
from graphsim.common import json_object, sim_state
from graphsim.errors import GraphError
from graphsim.routes_uploads import session_status, upload_url
from graphsim.state import SentMail

SMALL_ATTACHMENT_MAX = 3 * 1024 * 1024  # a POSTed fileAttachment must be under 3 MB
SESSION_ATTACHMENT_MAX = 150 * 1024 * 1024


def _not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def _file_attachment(given: dict[str, Any]) -> dict[str, Any]:
    """A fileAttachment with its bytes checked and replaced by a digest (tests compare digests)."""
    if given.get("@odata.type") != "#microsoft.graph.fileAttachment":
        raise GraphError(400, "ErrorInvalidParameter", "Only #microsoft.graph.fileAttachment is emulated.")
    try:
        content = base64.b64decode(str(given.get("contentBytes", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise GraphError(400, "ErrorInvalidParameter", "contentBytes is not valid base64.") from exc
    if len(content) >= SMALL_ATTACHMENT_MAX:
        raise GraphError(413, "ErrorRequestEntityTooLarge", "Use an upload session for attachments of 3 MB or more.")
    kept = {k: v for k, v in given.items() if k != "contentBytes"}
    return {**kept, "id": resources.new_mail_id(), "size": len(content),
            "contentSha256": hashlib.sha256(content).hexdigest()}  # fmt: skip


async def create_draft(request: Request) -> JSONResponse:
    """POST /users/{user_id}/messages -> 201 draft message."""
    given = await json_object(request)
    attachments = [_file_attachment(a) for a in given.pop("attachments", []) or []]
    message = resources.mail_message(resources.new_mail_id(), {**given, "isDraft": True, "parentFolderId": "Drafts"})
    message["attachments"] = attachments
    message["hasAttachments"] = bool(attachments)
    sim_state(request).files.put_draft(request.path_params["user_id"], message)
    return JSONResponse({k: v for k, v in message.items() if k != "attachments"}, status_code=201)


async def add_attachment(request: Request) -> JSONResponse:
    """POST /users/{user_id}/messages/{message_id}/attachments -> 201 attachment."""
    attachment = _file_attachment(await json_object(request))
    params = request.path_params
    if not sim_state(request).files.add_draft_attachment(params["user_id"], params["message_id"], attachment):
        raise _not_found()
    return JSONResponse(attachment, status_code=201)


async def create_upload_session(request: Request) -> JSONResponse:
    """POST .../messages/{message_id}/attachments/createUploadSession -> 201 uploadSession."""
    params = request.path_params
    files = sim_state(request).files
    if files.draft(params["user_id"], params["message_id"]) is None:
        raise _not_found()
    item = (await json_object(request)).get("AttachmentItem")
    if not isinstance(item, dict) or item.get("attachmentType") != "file" or not item.get("name"):
        raise GraphError(
            400, "ErrorInvalidParameter", "AttachmentItem with attachmentType 'file' and a name is required."
        )
    size = item.get("size")
    if not isinstance(size, int) or size <= 0 or size > SESSION_ATTACHMENT_MAX:
        raise GraphError(
            400, "ErrorAttachmentSizeLimitExceeded", "The attachment size must be between 1 byte and 150 MB."
        )
    target = {"user_id": params["user_id"], "message_id": params["message_id"], "name": item["name"],
              "contentType": item.get("contentType"), "isInline": item.get("isInline", False),
              "contentId": item.get("contentId")}  # fmt: skip
    session = files.new_session("mail", target, size)
    return JSONResponse({"uploadUrl": upload_url(request, session.id), **session_status(session)}, status_code=201)


async def send_draft(request: Request) -> Response:
    """POST /users/{user_id}/messages/{message_id}/send -> 202; the draft goes to Sent Items."""
    params = request.path_params
    state = sim_state(request)
    draft = state.files.pop_draft(params["user_id"], params["message_id"])
    if draft is None:
        raise _not_found()
    message = {**draft, "isDraft": False, "parentFolderId": "SentItems"}
    state.add_sent_mail(SentMail(user_id=params["user_id"], message=message, save_to_sent_items=True, id=draft["id"]))
    state.put_mail_message(params["user_id"], message)
    return Response(status_code=202)


def routes() -> list[BaseRoute]:
    """Draft routes, relative to ``/v1.0``."""
    message = "/users/{user_id}/messages/{message_id}"
    return [
        Route("/users/{user_id}/messages", create_draft, methods=["POST"]),
        Route(f"{message}/attachments", add_attachment, methods=["POST"]),
        Route(f"{message}/attachments/createUploadSession", create_upload_session, methods=["POST"]),
        Route(f"{message}/send", send_draft, methods=["POST"]),
    ]
