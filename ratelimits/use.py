"""What a caller declares about a request's limits when its URL does not say enough."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Use:
    """One limit a request counts against, declared by a caller when the URL does not say enough.

    `api` names an entry of the limits table (`outlook`, `teams.chat`, `files`, ...); `scope` is
    what the API is limited per (a mailbox, a chat id, `team:channel`; empty for tenant-wide
    APIs); `upload_bytes` is charged to the API's byte budget (an upload session's chunk).
    """

    api: str
    scope: str = ""
    upload_bytes: int = 0
