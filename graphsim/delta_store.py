"""graphsim's delta-query data: collections of items with a change log, and Graph-like state tokens.

Each collection (a mail folder, a calendar, contacts, a drive, a channel) keeps its items with the
sequence number of their last change; a deleted item stays as a tombstone. A round of delta pages
is a keyset walk over (since, upto]: `upto` is fixed when the round starts, so the pages of one
round are stable while items change (changes after `upto` show up in the next round, as with
Graph). Tokens carry the collection's epoch: `expire()` bumps it and every older token, skip or
delta, answers 410 Gone as Graph does when its delta token cache dropped a token.
https://learn.microsoft.com/en-us/graph/delta-query-overview

Collection keys: ``mail:{user}:{folder}``, ``events:{user}``, ``contacts:{user}:{folder id}``,
``drive:{drive}``, ``channel:{team}:{channel}`` (user and mail folder names are case-insensitive, as in
Exchange; a contact folder is named by its id, which keeps its case). Contacts are kept per folder, as
Graph's contact delta is: a user's default Contacts folder has the id
`delta_resources.default_contacts_folder(user)`.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from graphsim import delta_resources

DeltaKind = Literal["mail", "events", "contacts", "drive", "channel"]
KINDS: tuple[DeltaKind, ...] = ("mail", "events", "contacts", "drive", "channel")


def collection_key(kind: str, *parts: str) -> str:
    """The store key of a collection, normalised the way Graph compares the names."""
    if kind not in KINDS:
        raise ValueError(f"unknown delta collection kind {kind!r}; known: {', '.join(KINDS)}")
    if kind in ("mail", "events"):
        parts = tuple(p.lower() for p in parts)
    elif kind == "contacts":
        if len(parts) != 2:
            raise ValueError("contacts are kept per folder: contacts:{user}:{folder id}")
        parts = (parts[0].lower(), parts[1])
    return ":".join((kind, *parts))


def kind_of(key: str) -> DeltaKind:
    kind = key.split(":", 1)[0]
    if kind == "contacts" and key.count(":") < 2:
        raise ValueError(f"contacts are kept per folder: {key!r} should be contacts:{{user}}:{{folder id}}")
    for known in KINDS:
        if kind == known:
            return known
    raise ValueError(f"unknown delta collection {key!r}; keys start with one of {', '.join(KINDS)}")


class TokenInvalid(Exception):
    """A token graphsim did not issue (400) or issued for another collection."""


class TokenExpired(Exception):
    """A token from before the collection's last `expire()` (410 Gone)."""


@dataclass
class _Entry:
    item: dict[str, Any] | None  # None: deleted (a tombstone)
    seq: int
    removed: dict[str, Any] | None = None  # what a delta answers for the tombstone


@dataclass
class _Collection:
    kind: DeltaKind
    entries: dict[str, _Entry] = field(default_factory=dict)
    epoch: int = 0


@dataclass(frozen=True)
class Cursor:
    """Where a round stands: changes in (since, upto] after `after`, the page size, a calendar window."""

    key: str
    epoch: int
    since: int
    upto: int
    after: int
    size: int
    window: tuple[str, str] | None = None


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: Cursor | None  # None: the round is over; the delta token is `upto`


def encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError) as exc:
        raise TokenInvalid(f"malformed token: {exc}") from exc
    if not isinstance(data, dict):
        raise TokenInvalid("malformed token")
    return data


class DeltaStore:
    """Delta collections; thread-safe like the rest of SimState."""

    def __init__(self, default_page_size: int = 10) -> None:
        # Outlook's delta pages hold 10 items unless the request prefers more (odata.maxpagesize).
        self.default_page_size = default_page_size
        self._lock = threading.Lock()
        self._collections: dict[str, _Collection] = {}
        self._seq = 0

    def reset(self) -> None:
        with self._lock:
            self._collections.clear()

    # -- the seeded dataset ----------------------------------------------------------------

    def create(self, key: str) -> None:
        """Make an (empty) collection exist, so its delta answers instead of 404."""
        with self._lock:
            self._collections.setdefault(key, _Collection(kind_of(key)))

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self._collections

    def keys(self, prefix: str) -> list[str]:
        """The keys of the collections that start with `prefix` (e.g. a user's contact folders)."""
        with self._lock:
            return sorted(k for k in self._collections if k.startswith(prefix))

    def upsert(self, key: str, given: dict[str, Any]) -> dict[str, Any]:
        """Add or update an item (a new version: changeKey/eTag/lastModified move on); the stored item."""
        with self._lock:
            coll = self._collections.setdefault(key, _Collection(kind_of(key)))
            self._seq += 1
            item_id = str(given.get("id") or delta_resources.new_id(coll.kind, self._seq))
            if coll.kind == "contacts":  # a contact names its folder
                given = {**given, "parentFolderId": key.split(":", 2)[-1]}
            old = coll.entries.get(item_id)
            base = old.item if old is not None and old.item is not None else None
            item = delta_resources.build(coll.kind, item_id, given, self._seq, base)
            coll.entries[item_id] = _Entry(item, self._seq)
            return copy.deepcopy(item)

    def delete(self, key: str, item_id: str) -> bool:
        """Delete an item (it turns into a tombstone the next delta reports); False if unknown."""
        with self._lock:
            coll = self._collections.get(key)
            entry = coll.entries.get(item_id) if coll else None
            if coll is None or entry is None or entry.item is None:
                return False
            self._seq += 1
            removed = delta_resources.removed(coll.kind, entry.item)
            coll.entries[item_id] = _Entry(None, self._seq, removed)
            return True

    def items(self, key: str) -> list[dict[str, Any]]:
        """The live items of a collection, oldest change first."""
        with self._lock:
            coll = self._collections.get(key)
            entries = sorted(coll.entries.values(), key=lambda e: e.seq) if coll else []
            return [copy.deepcopy(e.item) for e in entries if e.item is not None]

    def expire(self, key: str) -> None:
        """Invalidate every token issued so far for `key` (they answer 410 Gone)."""
        with self._lock:
            coll = self._collections.setdefault(key, _Collection(kind_of(key)))
            coll.epoch += 1

    # -- rounds ------------------------------------------------------------------------------

    def start(self, key: str, size: int | None, window: tuple[str, str] | None = None) -> Cursor:
        """A cursor for a new initial round (everything live now)."""
        with self._lock:
            coll = self._collections[key]
            return Cursor(key, coll.epoch, 0, self._seq, 0, size or self.default_page_size, window)

    def resume(self, key: str, token: str, *, delta: bool, size: int | None) -> Cursor:
        """The cursor a skip token (delta=False) or a delta token (delta=True) stands for."""
        data = decode_token(token)
        if data.get("k") != key:
            raise TokenInvalid("the token belongs to another resource")
        with self._lock:
            coll = self._collections[key]
            if int(data.get("e", -1)) != coll.epoch:
                raise TokenExpired(key)
            w = data.get("w")
            window = (str(w[0]), str(w[1])) if w else None
            size = size or int(data.get("n") or self.default_page_size)
            since = int(data["s"])
            if delta:  # a new round: the changes since the last one ended
                return Cursor(key, coll.epoch, since, self._seq, since, size, window)
            return Cursor(key, coll.epoch, since, int(data["u"]), int(data["a"]), size, window)

    def page(self, cursor: Cursor, keep: Callable[[dict[str, Any]], bool] | None = None) -> Page:
        """The next page of `cursor`'s round; `keep(item) -> bool` filters (the calendar window)."""
        with self._lock:
            coll = self._collections[cursor.key]
            due = sorted(
                (e for e in coll.entries.values() if cursor.after < e.seq <= cursor.upto),
                key=lambda e: e.seq,
            )
            out: list[dict[str, Any]] = []
            last = cursor.after
            for entry in due:
                if len(out) == cursor.size:
                    break
                last = entry.seq
                if entry.item is None:
                    # An initial round lists what exists; removals only matter to a client that synced before.
                    if cursor.since > 0 and entry.removed is not None:
                        out.append(copy.deepcopy(entry.removed))
                elif keep is None or keep(entry.item):
                    out.append(copy.deepcopy(entry.item))
            more = any(e.seq > last for e in due)
            nxt = Cursor(cursor.key, cursor.epoch, cursor.since, cursor.upto, last, cursor.size, cursor.window)
            return Page(out, nxt if more else None)

    @staticmethod
    def skip_token(cursor: Cursor) -> str:
        data: dict[str, Any] = {"k": cursor.key, "e": cursor.epoch, "s": cursor.since, "u": cursor.upto,
                                "a": cursor.after, "n": cursor.size}  # fmt: skip
        if cursor.window:
            data["w"] = list(cursor.window)
        return encode_token(data)

    @staticmethod
    def delta_token(cursor: Cursor) -> str:
        data: dict[str, Any] = {"k": cursor.key, "e": cursor.epoch, "s": cursor.upto, "n": cursor.size}
        if cursor.window:
            data["w"] = list(cursor.window)
        return encode_token(data)
