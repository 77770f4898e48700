"""Which job a notification's resource becomes: a message to fetch (inbound) or a delta sync.

Resource paths as Graph sends them in notifications:
https://learn.microsoft.com/en-us/graph/change-notifications-overview#supported-resources
(`Users/{id}/Messages/{id}`, `chats('{id}')/messages('{id}')`,
`teams('{id}')/channels('{id}')/messages('{id}')`, `Users/{id}/Events/{id}`, `drives/{id}/root`).
Chat, channel and mail messages are fetched one by one; events, contacts and drive items
are followed by a delta sync of their collection (one sync at a time per collection).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

SyncKind = Literal["mail", "calendar", "contacts", "drive", "channel_messages"]
_SEGMENT = re.compile(r"^([^(]+)\('([^']*)'\)$")


@dataclass(frozen=True)
class InboundRoute:
    resource: str


@dataclass(frozen=True)
class SyncRoute:
    kind: SyncKind
    owner: str  # the user (mail, calendar, contacts), the drive id (drive), the team id (channel_messages)
    folder: str | None = None  # mail folder; contact folder (None: the user's default Contacts folder)
    channel_id: str | None = None  # channel_messages


def segments(resource: str) -> list[str]:
    """`/teams('a')/channels('b')/messages` -> ['teams', 'a', 'channels', 'b', 'messages'].

    Segment names are matched case-insensitively (Graph sends `Users/..../Messages`); ids keep their case.
    """
    out: list[str] = []
    for part in resource.strip().strip("/").split("?", 1)[0].split("/"):
        match = _SEGMENT.match(part)
        if match:
            out += [match.group(1), match.group(2)]
        elif part:
            out.append(part)
    return out


def _names(parts: list[str]) -> list[str]:
    """Every other segment lower-cased (the names), ids left as they are."""
    return [p.lower() if i % 2 == 0 else p for i, p in enumerate(parts)]


def route_change(resource: str | None) -> InboundRoute | SyncRoute | None:
    """The job for one change notification's resource; None when there is none we can run."""
    if not resource:
        return None
    p = _names(segments(resource))
    n = len(p)
    if n == 4 and p[0] == "users" and p[2] == "messages":
        return InboundRoute(resource)
    if n == 6 and p[0] == "users" and p[2] == "mailfolders" and p[4] == "messages":
        return InboundRoute(resource)
    if n == 4 and p[0] == "chats" and p[2] == "messages":
        return InboundRoute(resource)
    if n in (6, 8) and p[0] == "teams" and p[2] == "channels" and p[4] == "messages" and (n == 6 or p[6] == "replies"):
        return InboundRoute(resource)
    return resync_route(resource)


def resync_route(resource: str | None) -> SyncRoute | None:
    """The delta sync that catches up on a subscription's (or an item's) collection, if any."""
    if not resource:
        return None
    p = _names(segments(resource))
    n = len(p)
    if n >= 3 and p[0] == "users":
        owner, what = p[1], p[2]
        if what == "messages":
            return SyncRoute("mail", owner, "inbox")
        if what == "mailfolders" and n >= 5 and p[4] == "messages":
            return SyncRoute("mail", owner, p[3])
        if what in ("events", "calendar", "calendarview"):
            return SyncRoute("calendar", owner)
        if what == "contacts":
            return SyncRoute("contacts", owner)
        if what == "contactfolders" and n >= 5 and p[4] == "contacts":
            return SyncRoute("contacts", owner, p[3])
    if n >= 2 and p[0] == "drives":
        return SyncRoute("drive", p[1])
    if n >= 5 and p[0] == "teams" and p[2] == "channels" and p[4] == "messages":
        return SyncRoute("channel_messages", p[1], channel_id=p[3])
    return None
