"""Chunked uploads to a Graph upload session, resumable across job retries.

Progress (the session's upload URL and the next byte Graph expects) is kept in a Redis hash per
job (keys.upload_progress), written after every fragment, so a retry after a 429, a reset or a dead
worker resumes from `nextExpectedRanges` instead of starting over. Fragments go to the
pre-authenticated upload URL without an Authorization header. As Graph documents:
- 416 Requested Range Not Satisfiable: ask the session for its status (GET uploadUrl) and resume
  from its nextExpectedRanges;
- 404 on the upload URL: the session expired or was removed; start a new one from byte 0.
An upload is done when Graph says so, not when the last byte was sent: while byte ranges remain
missing Graph answers 202 (OneDrive; Outlook 200) with `nextExpectedRanges`, possibly several
ranges, even to the PUT that holds the file's last byte; only the final request gets 201 Created or
200 OK with the driveItem (Outlook: 201 with a Location). Missing ranges are sent again, only those.
https://learn.microsoft.com/en-us/graph/api/driveitem-createuploadsession#resuming-an-in-progress-upload
https://learn.microsoft.com/en-us/graph/api/driveitem-createuploadsession#handle-upload-errors
https://learn.microsoft.com/en-us/graph/outlook-large-attachments
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import BinaryIO

import httpx
import redis.asyncio as aioredis

from graphworks_core import keys
from graphworks_core.errors import GraphHTTPError, JobRejected
from processors.parts.sources import LocalFile
from worker.graph.client import GraphClient
from worker.graph.responses import reply_json, unexpected_reply

PIECE_BYTES = 256 * 1024  # what is read from disk at a time while a fragment is sent


class UploadProgress:
    """One job's upload state in Redis: named fields, refreshed TTL, removed once the job is done."""

    def __init__(
        self,
        redis: aioredis.Redis,
        job_id: str,
        ttl_s: int,
        *,
        report: Callable[[int, int], Awaitable[None]] | None = None,
    ) -> None:
        self.redis = redis
        self.key = keys.upload_progress(job_id)
        self.ttl_s = ttl_s
        self.report = report  # (bytes done, total): the job's status record progress

    async def sent(self, todo: Ranges, size: int) -> None:
        """Tell the job's status record how many bytes the session holds (all but `todo`)."""
        if self.report is not None:
            await self.report(size - sum(last - first + 1 for first, last in todo), size)

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


Ranges = list[tuple[int, int]]  # (first byte, last byte) pairs, both included


def missing_ranges(ranges: list[str], size: int) -> Ranges:
    """nextExpectedRanges as byte pairs: "start-end", "start-" (to the end) or a bare "start" (Outlook:
    from there to the end), clipped to the file; ValueError for anything else."""
    out: Ranges = []
    for text in ranges:
        first, _, last = str(text).strip().partition("-")
        lo, hi = int(first), int(last) if last.strip() else size - 1
        if lo < 0 or hi < lo or lo >= size:
            raise ValueError(f"range {text!r} is not within a {size}-byte file")
        out.append((lo, min(hi, size - 1)))
    return sorted(out)


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
    todo: Ranges = [(start, source.size - 1)]
    with source.path.open("rb") as handle:
        while True:
            try:
                return await _send(graph, progress, slot, url, handle, todo, source.size, chunk_bytes)
            except GraphHTTPError as exc:
                if exc.status == 416:
                    todo = await _status(graph, url, source.size)
                    await progress.set({f"next:{slot}": todo[0][0]})
                elif exc.status == 404 and not restarted:
                    # The session is gone (expired or cancelled): Graph says start a new one.
                    restarted = True
                    url, todo = await new_session(), [(0, source.size - 1)]
                    await progress.set({f"url:{slot}": url, f"next:{slot}": 0})
                else:
                    raise


def _expected(response: httpx.Response) -> list[str] | None:
    """The response's nextExpectedRanges (None: it has none, as a final 201/200 has not)."""
    if not response.content:
        return None
    ranges = reply_json(response).get("nextExpectedRanges")
    if ranges is None:
        return None
    if not isinstance(ranges, list):
        raise unexpected_reply(response, "whose nextExpectedRanges is not a list")
    return [str(r) for r in ranges]


def _ranges(response: httpx.Response, expected: list[str], size: int) -> Ranges:
    try:
        todo = missing_ranges(expected, size)
    except ValueError as exc:
        raise unexpected_reply(response, f"with nextExpectedRanges {expected} ({exc})") from exc
    if not todo:
        raise unexpected_reply(response, "an upload still in progress with no nextExpectedRanges")
    return todo


def _final(response: httpx.Response, held_last_byte: bool) -> bool:
    """Whether a reply without nextExpectedRanges ends the upload: 201 Created, or 200 OK with the
    driveItem (OneDrive, replacing a file), or a bare 200 to the fragment holding the last byte.
    A 202 never does: Graph still misses bytes."""
    status = response.status_code
    return status == 201 or (status == 200 and (bool(response.content) or held_last_byte))


async def _status(graph: GraphClient, url: str, size: int) -> Ranges:
    """What the session still misses, as it says (GET uploadUrl)."""
    response = await graph.call_url("GET", url, authorize=False)
    return _ranges(response, _expected(response) or [], size)


async def _send(
    graph: GraphClient,
    progress: UploadProgress,
    slot: str,
    url: str,
    handle: BinaryIO,
    todo: Ranges,
    size: int,
    chunk_bytes: int,
) -> httpx.Response:
    """Send the `todo` ranges fragment by fragment, following what each response says is still
    missing, until Graph answers without nextExpectedRanges: that final response (201/200)."""
    # Resending what Graph lost is bounded: a session that loses every fragment is not followed forever.
    fragments_left = 3 * -(-size // chunk_bytes) + 3
    while True:
        fragments_left -= 1
        start, last = todo[0]
        end = min(start + chunk_bytes - 1, last)
        length = end - start + 1
        headers = {"Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(length),
                   "Content-Type": "application/octet-stream"}  # fmt: skip
        response = await graph.call_url("PUT", url, content=_pieces(handle, start, length), headers=headers,
                                        authorize=False)  # fmt: skip
        expected = _expected(response)
        if expected is None and _final(response, end + 1 >= size):
            await progress.sent([], size)
            return response
        if fragments_left <= 0:
            raise unexpected_reply(response, f"still missing bytes after each was sent three times ({expected})")
        if expected is None:  # ranges remain (a 202), but which ones the session says
            todo = await _status(graph, url, size)
        elif expected:
            todo = _ranges(response, expected, size)
        elif end + 1 < size:
            todo = [(end + 1, size - 1)]  # an empty list mid-file: go on with the next fragment
        else:
            todo = await _status(graph, url, size)
        await progress.set({f"next:{slot}": todo[0][0]})
        await progress.sent(todo, size)
