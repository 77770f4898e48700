"""Chunked uploads to a Graph upload session, resumable across job retries.

Progress (the session's upload URL and the next byte Graph expects) is kept in a Redis hash per
job (keys.upload_progress), written after every fragment, so a retry after a 429, a reset or a dead
worker resumes from `nextExpectedRanges` instead of starting over. Fragments go to the
pre-authenticated upload URL without an Authorization header. As Graph documents:
- 416 Requested Range Not Satisfiable: ask the session for its status (GET uploadUrl) and resume
  from its nextExpectedRanges;
- 404 on the upload URL: the session expired or was removed; start a new one from byte 0.
https://learn.microsoft.com/en-us/graph/api/driveitem-createuploadsession#resuming-an-in-progress-upload
https://learn.microsoft.com/en-us/graph/api/driveitem-createuploadsession#handle-upload-errors
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import BinaryIO

import httpx
import redis.asyncio as aioredis

from graphworks_core import keys
from graphworks_core.errors import GraphHTTPError, JobRejected
from processors.parts.sources import LocalFile
from worker.graph.client import GraphClient

PIECE_BYTES = 256 * 1024  # what is read from disk at a time while a fragment is sent


class UploadProgress:
    """One job's upload state in Redis: named fields, refreshed TTL, removed once the job is done."""

    def __init__(self, redis: aioredis.Redis, job_id: str, ttl_s: int) -> None:
        self.redis = redis
        self.key = keys.upload_progress(job_id)
        self.ttl_s = ttl_s

    async def get(self, field: str) -> str | None:
        raw: bytes | str | None = await self.redis.hget(self.key, field)  # type: ignore[misc]
        return raw.decode() if isinstance(raw, bytes) else raw

    async def set(self, fields: dict[str, str | int]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, mapping={k: str(v) for k, v in fields.items()})
            pipe.expire(self.key, self.ttl_s)
            await pipe.execute()

    async def clear(self) -> None:
        await self.redis.delete(self.key)


def next_start(ranges: list[str]) -> int:
    """The first byte Graph still wants: OneDrive sends "start-end" / "start-", Outlook a bare "start"."""
    if not ranges:
        raise ValueError("the upload session reported no nextExpectedRanges")
    return int(str(ranges[0]).split("-", 1)[0])


async def _pieces(handle: BinaryIO, offset: int, length: int) -> AsyncIterator[bytes]:
    """One fragment's bytes, read as httpx sends them: a 5 MiB fragment never sits in memory whole
    (and no copy of it waits in a transport buffer)."""
    end = offset + length
    while offset < end:
        size = min(PIECE_BYTES, end - offset)

        def read(at: int = offset, n: int = size) -> bytes:
            handle.seek(at)
            return handle.read(n)

        # Off the event loop: a disk read would stall every other job in this worker.
        piece = await asyncio.to_thread(read)
        if len(piece) != size:
            raise JobRejected(f"the file shrank while it was being uploaded (short read at byte {offset})")
        offset += size
        yield piece


async def upload_in_chunks(
    graph: GraphClient,
    progress: UploadProgress,
    slot: str,
    source: LocalFile,
    chunk_bytes: int,
    new_session: Callable[[], Awaitable[str]],
) -> httpx.Response:
    """Upload `source` through an upload session (resuming this slot's if one is recorded); the final
    fragment's response (201/200, a driveItem for OneDrive, a Location header for Outlook)."""
    if source.size == 0:
        raise JobRejected(f"{source.name} is empty; an upload session needs at least one byte")
    url = await progress.get(f"url:{slot}")
    start = int(await progress.get(f"next:{slot}") or 0)
    if url is None:
        url, start = await new_session(), 0
        await progress.set({f"url:{slot}": url, f"next:{slot}": 0})
    restarted = False
    with source.path.open("rb") as handle:
        while True:
            try:
                return await _send_from(graph, progress, slot, url, handle, start, source.size, chunk_bytes)
            except GraphHTTPError as exc:
                if exc.status == 416:
                    start = await _status(graph, url)
                    await progress.set({f"next:{slot}": start})
                elif exc.status == 404 and not restarted:
                    # The session is gone (expired or cancelled): Graph says start a new one.
                    restarted = True
                    url, start = await new_session(), 0
                    await progress.set({f"url:{slot}": url, f"next:{slot}": 0})
                else:
                    raise


async def _status(graph: GraphClient, url: str) -> int:
    response = await graph.call_url("GET", url, authorize=False)
    return next_start(json.loads(response.content).get("nextExpectedRanges", []))


async def _send_from(
    graph: GraphClient,
    progress: UploadProgress,
    slot: str,
    url: str,
    handle: BinaryIO,
    start: int,
    size: int,
    chunk_bytes: int,
) -> httpx.Response:
    while True:
        end = min(start + chunk_bytes, size) - 1
        length = end - start + 1
        headers = {"Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(length),
                   "Content-Type": "application/octet-stream"}  # fmt: skip
        response = await graph.call_url("PUT", url, content=_pieces(handle, start, length), headers=headers,
                                        authorize=False)  # fmt: skip
        if end + 1 >= size:
            return response
        body = json.loads(response.content) if response.content else {}
        start = next_start(body.get("nextExpectedRanges") or [str(end + 1)])
        await progress.set({f"next:{slot}": start})
