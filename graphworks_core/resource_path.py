"""Parse the `resource` of a change notification into what it names (a chat, channel or mail message).

Graph writes the same resource several ways: ``chats('19:x@thread.v2')/messages('1616')`` and
``teams('t')/channels('c')/messages('m')`` (OData key syntax) for Teams, ``Users/{id}/Messages/{id}``
for Outlook, and plain ``chats/{id}/messages/{id}`` paths; a reply is
``.../messages('m')/replies('r')``. Segment names are case-insensitive.
https://learn.microsoft.com/en-us/graph/teams-changenotifications-chatmessage
https://learn.microsoft.com/en-us/graph/outlook-change-notifications-overview
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

Source = Literal["chat", "channel", "mail"]

# name('value') with '' as an escaped quote inside the value
_KEY = re.compile(r"\('((?:[^']|'')*)'\)")
_VERSION = re.compile(r"^(v1\.0|beta)/", re.IGNORECASE)


@dataclass(frozen=True)
class MessageRef:
    """A message a notification names."""

    source: Source
    message_id: str
    chat_id: str | None = None
    team_id: str | None = None
    channel_id: str | None = None
    parent_id: str | None = None  # a channel reply's parent message
    user_id: str | None = None  # the mailbox

    @property
    def canonical(self) -> str:
        """One spelling per message: the Graph path (ids percent-encoded), for dedup and logs."""

        def q(value: str | None) -> str:
            return quote(value or "", safe="")

        if self.source == "chat":
            return f"chats/{q(self.chat_id)}/messages/{q(self.message_id)}"
        if self.source == "mail":
            return f"users/{q((self.user_id or '').lower())}/messages/{q(self.message_id)}"
        base = f"teams/{q(self.team_id)}/channels/{q(self.channel_id)}/messages/"
        return base + (f"{q(self.parent_id)}/replies/{q(self.message_id)}" if self.parent_id else q(self.message_id))


def _segments(resource: str) -> list[str]:
    text = resource.strip()
    if "://" in text:
        text = urlsplit(text).path
    text = _VERSION.sub("", text.lstrip("/"))
    # name('value') -> name/<value percent-encoded>, so a '/' inside a key cannot split it.
    text = _KEY.sub(lambda m: "/" + quote(m.group(1).replace("''", "'"), safe=""), text)
    return [unquote(part) for part in text.split("/") if part]


def parse_message_resource(resource: str) -> MessageRef:
    """The message `resource` names, or ValueError saying which forms are understood."""
    parts = _segments(resource)
    names = [p.lower() for p in parts[0::2]]
    ids = parts[1::2]
    if len(ids) == len(names) and all(ids):
        if names == ["chats", "messages"]:
            return MessageRef("chat", ids[1], chat_id=ids[0])
        if names == ["teams", "channels", "messages"]:
            return MessageRef("channel", ids[2], team_id=ids[0], channel_id=ids[1])
        if names == ["teams", "channels", "messages", "replies"]:
            return MessageRef("channel", ids[3], team_id=ids[0], channel_id=ids[1], parent_id=ids[2])
        if names == ["users", "messages"]:
            return MessageRef("mail", ids[1], user_id=ids[0])
        if names == ["users", "mailfolders", "messages"]:
            return MessageRef("mail", ids[2], user_id=ids[0])
    raise ValueError(
        f"resource {resource!r} does not name one message; expected chats('{{id}}')/messages('{{id}}'), "
        "teams('{id}')/channels('{id}')/messages('{id}')[/replies('{id}')] or Users/{id}/Messages/{id}"
    )
