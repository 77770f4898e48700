"""Builders for Graph resource shapes (chatMessage, message) with Graph's defaults.

Kept apart from the routes so seeding (tests, control API) and posting produce the same
shapes.
"""

from __future__ import annotations

import base64
import copy
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

GRAPH_ROOT = "https://graph.microsoft.com/v1.0"

# The signed-in user every delegated call is made as; any plausible Entra user will do.
SIM_USER: dict[str, Any] = {
    "@odata.type": "#microsoft.graph.teamworkUserIdentity",
    "id": "8ea0e38b-efb3-4757-924a-5f94061cf8c2",
    "displayName": "Graph Simulator",
    "userIdentityType": "aadUser",
    "tenantId": "2432b57b-0abd-43db-aa7b-16eadd115d34",
}
SIM_MAIL_SENDER: dict[str, Any] = {
    "emailAddress": {"name": "Graph Simulator", "address": "graphsim@contoso.onmicrosoft.com"}
}


def new_mail_id() -> str:
    """An Outlook-looking item id (base64 of an entry id)."""
    raw = b"\x00\x00\x00\x00" + uuid.uuid4().bytes + uuid.uuid4().bytes
    return "AAMkAD" + base64.urlsafe_b64encode(raw).decode("ascii")


def iso_ms(at: datetime | None = None) -> str:
    """`at` (default now) as Graph writes timestamps: UTC, milliseconds, trailing Z."""
    return (at or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _merge(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(defaults)
    merged.update(copy.deepcopy(given))
    return merged


def chat_message(
    message_id: str,
    given: dict[str, Any],
    *,
    chat_id: str | None = None,
    team_id: str | None = None,
    channel_id: str | None = None,
) -> dict[str, Any]:
    """A chatMessage resource: Graph's defaults, overridden by `given`.

    Pass `chat_id` for a chat message or `team_id` and `channel_id` for a channel one.
    """
    # Teams message ids are the creation time in epoch milliseconds; keep the two agreeing.
    at = datetime.fromtimestamp(int(message_id) / 1000, UTC) if message_id.isdigit() else None
    now = iso_ms(at)
    if chat_id is not None:
        context = f"{GRAPH_ROOT}/$metadata#chats('{quote(chat_id, safe='')}')/messages/$entity"
        channel_identity = None
    else:
        context = (
            f"{GRAPH_ROOT}/$metadata#teams('{quote(team_id or '', safe='')}')"
            f"/channels('{quote(channel_id or '', safe='')}')/messages/$entity"
        )
        channel_identity = {"teamId": team_id, "channelId": channel_id}
    defaults: dict[str, Any] = {
        "@odata.context": context,
        "id": message_id,
        "replyToId": None,
        "etag": message_id,
        "messageType": "message",
        "createdDateTime": now,
        "lastModifiedDateTime": now,
        "lastEditedDateTime": None,
        "deletedDateTime": None,
        "subject": None,
        "summary": None,
        "chatId": chat_id,
        "importance": "normal",
        "locale": "en-us",
        "webUrl": None,
        "channelIdentity": channel_identity,
        "policyViolation": None,
        "eventDetail": None,
        "from": {"application": None, "device": None, "user": copy.deepcopy(SIM_USER)},
        "body": {"contentType": "text", "content": ""},
        "attachments": [],
        "mentions": [],
        "reactions": [],
    }
    merged = _merge(defaults, given)
    merged["id"] = message_id
    return merged


def mail_message(message_id: str, given: dict[str, Any]) -> dict[str, Any]:
    """A message resource (Outlook mail): Graph's defaults, overridden by `given`."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # Outlook writes whole seconds
    body = given.get("body") if isinstance(given.get("body"), dict) else {}
    content = str((body or {}).get("content", ""))
    defaults: dict[str, Any] = {
        "@odata.etag": 'W/"CQAAABYAAAAiIsqMbYjsT5e/T7KzowPTAAAYbvZD"',
        "id": message_id,
        "createdDateTime": now,
        "lastModifiedDateTime": now,
        "changeKey": "CQAAABYAAAAiIsqMbYjsT5e/T7KzowPTAAAYbvZD",
        "categories": [],
        "receivedDateTime": now,
        "sentDateTime": now,
        "hasAttachments": False,
        "internetMessageId": f"<{uuid.uuid4().hex}@contoso.onmicrosoft.com>",
        "subject": "",
        "bodyPreview": content[:255],
        "importance": "normal",
        "parentFolderId": "AAMkADInbox",
        "conversationId": "AAQkAD" + base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii"),
        "conversationIndex": None,
        "isDeliveryReceiptRequested": False,
        "isReadReceiptRequested": False,
        "isRead": False,
        "isDraft": False,
        "webLink": f"https://outlook.office365.com/owa/?ItemID={quote(message_id, safe='')}",
        "inferenceClassification": "focused",
        "body": {"contentType": "text", "content": ""},
        "sender": copy.deepcopy(SIM_MAIL_SENDER),
        "from": copy.deepcopy(SIM_MAIL_SENDER),
        "toRecipients": [],
        "ccRecipients": [],
        "bccRecipients": [],
        "replyTo": [],
        "flag": {"flagStatus": "notFlagged"},
    }
    merged = _merge(defaults, given)
    merged["id"] = message_id
    return merged
