"""What each sync resource is in Graph: its initial delta URL, its state key, and how to read an item
(id, version, whether it is a removal).

https://learn.microsoft.com/en-us/graph/api/message-delta       /users/{id}/mailFolders/{id}/messages/delta
https://learn.microsoft.com/en-us/graph/api/event-delta         /users/{id}/calendarView/delta (window required)
https://learn.microsoft.com/en-us/graph/api/contact-delta       /users/{id}/contactFolders/{id}/contacts/delta
  (documented per folder only; the default folder's id is looked up: processors/parts/contact_folder.py)
https://learn.microsoft.com/en-us/graph/api/driveitem-delta     /drives/{id}/root/delta (removals: `deleted` facet)
https://learn.microsoft.com/en-us/graph/api/chatmessage-delta   /teams/{id}/channels/{id}/messages/delta
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from graphworks_core.payloads import Sync


@dataclass(frozen=True)
class SyncTarget:
    resource: str
    key: str  # unique per synced collection, part of the Redis keys
    initial_url: str
    describe: str  # for people: "mail folder inbox of ops@contoso.com"
    window: str | None = None  # calendar: "start/end"; a round's links only cover the window it began with
    # contacts: the folder the delta covers (None: the default folder, not looked up yet); links of
    # another folder (or of none, from before contacts were synced per folder) are not followed.
    contact_folder: str | None = None

    @property
    def needs_contact_folder(self) -> bool:
        return self.resource == "contacts" and self.contact_folder is None


def _q(value: str) -> str:
    return quote(value, safe="@")


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def target_for(payload: Sync, base_url: str, default_contact_folder: str | None = None) -> SyncTarget:
    """The target of `payload`; a contacts sync without `folder` covers `default_contact_folder` (the
    user's default Contacts folder, which the caller looks up and keeps with the sync state)."""
    owner = payload.owner
    if payload.resource == "mail":
        folder = payload.folder or "inbox"
        return SyncTarget("mail", f"mail:{owner.lower()}:{folder.lower()}",
                          f"{base_url}/users/{_q(owner)}/mailFolders/{_q(folder)}/messages/delta",
                          f"mail folder {folder} of {owner}")  # fmt: skip
    if payload.resource == "calendar":
        assert payload.start is not None and payload.end is not None  # the model requires the window
        start, end = _utc(payload.start), _utc(payload.end)
        query = urlencode({"startDateTime": start, "endDateTime": end})
        # One state per calendar, whatever the window: a job with a new window starts a full round in
        # it, and the end of that round reports what left the window as deleted.
        return SyncTarget("calendar", f"calendar:{owner.lower()}",
                          f"{base_url}/users/{_q(owner)}/calendarView/delta?{query}",
                          f"calendar of {owner} from {start} to {end}", window=f"{start}/{end}")  # fmt: skip
    if payload.resource == "contacts":
        # The default folder keeps the key it had before contacts were synced per folder; folder ids
        # are case-sensitive (base64), so a named folder's id is kept as it is.
        key = f"contacts:{owner.lower()}" + (f":{payload.folder}" if payload.folder else "")
        contact_folder = payload.folder or default_contact_folder
        url = ""  # the default folder not looked up yet: no URL until it is
        if contact_folder:
            url = f"{base_url}/users/{_q(owner)}/contactFolders/{_q(contact_folder)}/contacts/delta"
        describe = f"contacts in folder {payload.folder} of {owner}" if payload.folder else f"contacts of {owner}"
        return SyncTarget("contacts", key, url, describe, contact_folder=contact_folder)
    if payload.resource == "drive":
        return SyncTarget("drive", f"drive:{owner}", f"{base_url}/drives/{_q(owner)}/root/delta", f"drive {owner}")
    channel = payload.channel_id or ""
    return SyncTarget("channel_messages", f"channel_messages:{owner}:{channel}",
                      f"{base_url}/teams/{_q(owner)}/channels/{_q(channel)}/messages/delta",
                      f"channel {channel} of team {owner}")  # fmt: skip


def removal_reason(item: dict[str, Any]) -> str | None:
    """Why a delta item is a removal, or None for a created/updated item."""
    removed = item.get("@removed")
    if isinstance(removed, dict):
        return str(removed.get("reason") or "deleted")
    if isinstance(item.get("deleted"), dict):  # OneDrive's deleted facet
        return "deleted"
    if item.get("deletedDateTime"):  # a soft-deleted Teams message
        return "deleted"
    return None


def version_of(item: dict[str, Any]) -> str:
    """What changes when the item changes: changeKey (Outlook), eTag (drive), etag/lastModified (Teams)."""
    for field in ("changeKey", "eTag", "etag", "lastModifiedDateTime"):
        value = item.get(field)
        if value:
            return str(value)
    return hashlib.sha1(json.dumps(item, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
