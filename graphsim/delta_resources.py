"""Graph shapes of the items delta queries return (message, event, contact, driveItem, chatMessage),
each with the version fields a new change moves on, and of their removal markers.

Removals: Outlook and Teams send ``{"id", "@removed": {"reason": "deleted"}}``
(https://learn.microsoft.com/en-us/graph/delta-query-overview); OneDrive sends the item with a
``deleted`` facet (https://learn.microsoft.com/en-us/graph/api/driveitem-delta).
"""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any

from graphsim import resources

_ODATA_TYPES = {
    "mail": "#microsoft.graph.message",
    "events": "#microsoft.graph.event",
    "contacts": "#microsoft.graph.contact",
    "drive": "#microsoft.graph.driveItem",
    "channel": "#microsoft.graph.chatMessage",
}


def default_contacts_folder(user: str) -> str:
    """The id of `user`'s default Contacts folder: opaque base64 as Exchange's, stable per user."""
    digest = hashlib.sha256(f"contacts:{user.lower()}".encode()).digest()[:24]
    return "AAMkAD" + base64.urlsafe_b64encode(digest).decode() + "AAEOAAA="


def new_id(kind: str, seq: int) -> str:
    if kind == "channel":
        return str(1_700_000_000_000 + seq)  # Teams ids are epoch milliseconds
    if kind == "drive":
        return f"01SIMDRIVEITEM{seq:010d}"
    return resources.new_mail_id()


def _change_key(seq: int) -> str:
    return base64.b64encode(f"CQAAABYAAAA{seq:012d}".encode()).decode()


def build(kind: str, item_id: str, given: dict[str, Any], seq: int, base: dict[str, Any] | None) -> dict[str, Any]:
    """The stored item: the previous version (or Graph's defaults) with `given` on top, re-versioned."""
    now = resources.iso_ms()
    if base is not None:
        item = copy.deepcopy(base)
        item.update(copy.deepcopy(given))
    elif kind == "mail":
        item = resources.mail_message(item_id, given)
    elif kind == "channel":
        item = resources.chat_message(item_id, given)
    elif kind == "events":
        item = {"subject": "", "start": None, "end": None, "isCancelled": False, "createdDateTime": now,
                "organizer": copy.deepcopy(resources.SIM_MAIL_SENDER), **copy.deepcopy(given)}  # fmt: skip
    elif kind == "contacts":
        item = {"displayName": "", "emailAddresses": [], "createdDateTime": now, **copy.deepcopy(given)}
    else:
        item = {"name": f"item-{seq}", "size": 0, "file": {}, "createdDateTime": now,
                "parentReference": {"path": "/drive/root:"}, **copy.deepcopy(given)}  # fmt: skip
    item["id"] = item_id
    item["lastModifiedDateTime"] = now
    if kind in ("mail", "events", "contacts"):
        key = _change_key(seq)
        item["changeKey"] = key
        item["@odata.etag"] = f'W/"{key}"'
    elif kind == "drive":
        item["eTag"] = f'"{{{item_id}}},{seq}"'
        item["cTag"] = f'"c:{{{item_id}}},{seq}"'
    else:
        item["etag"] = str(seq)
        item["lastEditedDateTime"] = now if base is not None else None
    return item


def removed(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    """What a delta round answers for a deleted item."""
    if kind == "drive":
        return {"id": item["id"], "name": item.get("name"), "parentReference": item.get("parentReference"),
                "deleted": {"state": "deleted"}}  # fmt: skip
    return {"@odata.type": _ODATA_TYPES[kind], "id": item["id"], "@removed": {"reason": "deleted"}}
