"""Where downloads land: an object-store interface and its local-directory implementation.

A download is streamed to a staging file first (never whole in memory), scanned, then handed to
the store with `put_file`, which for a local directory is an atomic rename and for a remote store
would be a streamed upload of that file.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Protocol

from graphworks_core.errors import JobRejected


class ObjectStore(Protocol):
    def staging_dir(self) -> Path:
        """A local directory for partial downloads (on the same filesystem, for a cheap commit)."""

    async def put_file(self, key: str, source: Path) -> str:
        """Take `source` (moved, not copied, when possible) under `key`; returns where it now is."""


def safe_key(key: str) -> PurePosixPath:
    """A relative key without `..`, so a job cannot write outside the store."""
    parts = [p for p in PurePosixPath(key.replace("\\", "/")).parts if p not in ("", "/", ".")]
    if not parts or ".." in parts:
        raise JobRejected(f"store key {key!r} is not a relative path inside the download store")
    return PurePosixPath(*parts)


class LocalDirectoryStore:
    """Files under one directory (ATTACHMENT_DOWNLOAD_DIR)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def staging_dir(self) -> Path:
        staging = self.root / ".partial"
        staging.mkdir(parents=True, exist_ok=True)
        return staging

    async def put_file(self, key: str, source: Path) -> str:
        target = self.root / safe_key(key)

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(source, target)  # atomic: readers see the old file or the whole new one
            except OSError:
                shutil.move(str(source), str(target))

        await asyncio.to_thread(move)
        return str(target)
