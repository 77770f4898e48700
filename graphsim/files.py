"""graphsim's file state: drive items, Outlook drafts with their attachments, and upload sessions.

Kept apart from `SimState` (which owns one `FileStore` as `state.files`) so the upload and drive
routes have one small, lock-guarded home. Every read hands out copies.
"""

from __future__ import annotations

import copy
import hashlib
import mimetypes
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from graphsim import resources

# Upload sessions live this long without a fragment (OneDrive extends it on every fragment).
SESSION_LIFETIME_S = 15 * 60


@dataclass
class DriveItem:
    id: str
    drive_id: str
    path: str  # without leading slash, e.g. "folder/report.pdf"
    content: bytes
    etag_guid: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    version: int = 1
    created: str = field(default_factory=resources.iso_ms)
    modified: str = field(default_factory=resources.iso_ms)

    def resource(self) -> dict[str, Any]:
        """The driveItem as Graph returns it (the fields we emulate)."""
        name = self.path.rsplit("/", 1)[-1]
        parent = self.path.rsplit("/", 1)[0] if "/" in self.path else ""
        return {
            "id": self.id,
            "name": name,
            "size": len(self.content),
            "eTag": f'"{{{self.etag_guid}}},{self.version}"',
            "cTag": f'"c:{{{self.etag_guid}}},{self.version}"',
            "createdDateTime": self.created,
            "lastModifiedDateTime": self.modified,
            "webUrl": f"https://contoso.sharepoint.com/sites/sim/{self.drive_id}/{self.path}",
            "parentReference": {
                "driveId": self.drive_id,
                "path": f"/drives/{self.drive_id}/root:/{parent}".rstrip("/"),
            },
            "file": {
                "mimeType": mimetypes.guess_type(name)[0] or "application/octet-stream",
                "hashes": {"sha256Hash": hashlib.sha256(self.content).hexdigest().upper()},
            },
        }


@dataclass
class UploadSession:
    """An upload in progress: the file's bytes as far as they arrived (holes are zeros) and which
    byte ranges did arrive, so a lost range can show up in nextExpectedRanges as Graph lists it."""

    id: str
    kind: Literal["drive", "mail"]
    target: dict[str, Any]  # drive: drive_id, path, conflict; mail: user_id, message_id, attachment fields
    size: int | None
    data: bytearray = field(default_factory=bytearray)
    have: list[tuple[int, int]] = field(default_factory=list)  # received [first, last] ranges, sorted, merged
    expires_at: float = field(default_factory=lambda: time.time() + SESSION_LIFETIME_S)

    def missing(self) -> list[tuple[int, int | None]]:
        """The ranges still to come, [first, last]; last None: to the end of a file of unknown size."""
        if self.size is None:
            return [(0, None)]
        gaps: list[tuple[int, int | None]] = []
        at = 0
        for first, last in self.have:
            if first > at:
                gaps.append((at, first - 1))
            at = last + 1
        if at < self.size:
            gaps.append((at, self.size - 1))
        return gaps

    def overlaps(self, first: int, last: int) -> bool:
        return any(first <= hi and lo <= last for lo, hi in self.have)

    def accept(self, first: int, body: bytes) -> None:
        """Store a fragment (the caller checked it fits a missing range)."""
        assert self.size is not None
        if len(self.data) < self.size:
            self.data.extend(bytes(self.size - len(self.data)))
        self.data[first : first + len(body)] = body
        self._merge((first, first + len(body) - 1))

    def forget(self, first: int, last: int) -> None:
        """Lose bytes [first, last] as if they never arrived (a fault: Graph lost a fragment)."""
        kept: list[tuple[int, int]] = []
        for lo, hi in self.have:
            if hi < first or lo > last:
                kept.append((lo, hi))
                continue
            if lo < first:
                kept.append((lo, first - 1))
            if hi > last:
                kept.append((last + 1, hi))
        self.have = kept

    def _merge(self, new: tuple[int, int]) -> None:
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted([*self.have, new]):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self.have = merged


class FileStore:
    """Drive items by (drive, path), drafts by (mailbox, id), upload sessions by id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], DriveItem] = {}
        self._drafts: dict[tuple[str, str], dict[str, Any]] = {}
        self._sessions: dict[str, UploadSession] = {}
        self._downloads: dict[str, tuple[str, str]] = {}

    def reset(self) -> None:
        with self._lock:
            self._items.clear()
            self._drafts.clear()
            self._sessions.clear()
            self._downloads.clear()

    # -- drive items -------------------------------------------------------------------------

    def put_item(self, drive_id: str, path: str, content: bytes) -> tuple[DriveItem, bool]:
        """Create or replace the item at `path`; (item, created)."""
        key = (drive_id, path.strip("/").lower())
        with self._lock:
            existing = self._items.get(key)
            if existing is not None:
                existing.content = bytes(content)
                existing.version += 1
                existing.modified = resources.iso_ms()
                return copy.copy(existing), False
            item = DriveItem(
                id=uuid.uuid4().hex.upper(), drive_id=drive_id, path=path.strip("/"), content=bytes(content)
            )
            self._items[key] = item
            return copy.copy(item), True

    def item_at(self, drive_id: str, path: str) -> DriveItem | None:
        with self._lock:
            found = self._items.get((drive_id, path.strip("/").lower()))
            return copy.copy(found) if found else None

    def item_by_id(self, drive_id: str, item_id: str) -> DriveItem | None:
        with self._lock:
            for item in self._items.values():
                if item.drive_id == drive_id and item.id == item_id:
                    return copy.copy(item)
        return None

    def delete_item(self, drive_id: str, path: str) -> bool:
        with self._lock:
            return self._items.pop((drive_id, path.strip("/").lower()), None) is not None

    def items(self) -> list[DriveItem]:
        with self._lock:
            return [copy.copy(i) for i in self._items.values()]

    def download_token(self, item: DriveItem) -> str:
        """A pre-authenticated download URL's token for an item (like Graph's 302 Location)."""
        token = uuid.uuid4().hex
        with self._lock:
            self._downloads[token] = (item.drive_id, item.path)
        return token

    def download(self, token: str) -> DriveItem | None:
        with self._lock:
            where = self._downloads.get(token)
        return self.item_at(*where) if where else None

    # -- drafts ------------------------------------------------------------------------------

    def put_draft(self, user_id: str, message: dict[str, Any]) -> None:
        with self._lock:
            self._drafts[(user_id.lower(), message["id"])] = copy.deepcopy(message)

    def draft(self, user_id: str, message_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._drafts.get((user_id.lower(), message_id))
            return copy.deepcopy(found) if found else None

    def add_draft_attachment(self, user_id: str, message_id: str, attachment: dict[str, Any]) -> bool:
        with self._lock:
            draft = self._drafts.get((user_id.lower(), message_id))
            if draft is None:
                return False
            draft.setdefault("attachments", []).append(copy.deepcopy(attachment))
            draft["hasAttachments"] = True
            return True

    def pop_draft(self, user_id: str, message_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._drafts.pop((user_id.lower(), message_id), None)

    def drafts(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._drafts.values()))

    # -- upload sessions ---------------------------------------------------------------------

    def new_session(self, kind: Literal["drive", "mail"], target: dict[str, Any], size: int | None) -> UploadSession:
        session = UploadSession(id=uuid.uuid4().hex, kind=kind, target=dict(target), size=size)
        with self._lock:
            self._sessions[session.id] = session
        return session

    def session(self, session_id: str) -> UploadSession | None:
        """The live session (the object itself: callers hold `lock` while changing it), or None if expired."""
        with self._lock:
            found = self._sessions.get(session_id)
            if found is not None and found.expires_at < time.time():
                del self._sessions[session_id]
                return None
            return found

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    def end_session(self, session_id: str) -> bool:
        with self._lock:
            return self._sessions.pop(session_id, None) is not None

    def expire_sessions(self) -> int:
        """Test hook: every open session expires now (its URL answers 404 from here on)."""
        with self._lock:
            for s in self._sessions.values():
                s.expires_at = 0.0
            return len(self._sessions)

    def sessions(self) -> list[UploadSession]:
        with self._lock:
            return [copy.copy(s) for s in self._sessions.values()]
