"""attachment: upload, download or delete a OneDrive/SharePoint file; files travel by path or URL.

Upload: a file up to ATTACHMENT_SIMPLE_UPLOAD_MAX_BYTES with one PUT .../content, a larger one by
upload session in ATTACHMENT_CHUNK_BYTES fragments (multiples of 320 KiB), resumable across retries
(processors/upload_session.py). Download: GET .../content (Graph redirects to a pre-authenticated
URL) streamed to a staging file, scanned, then put in the object store. Delete: DELETE the item; an
item already gone counts as deleted (a retry after a lost 204 must not dead-letter).
https://learn.microsoft.com/en-us/graph/api/driveitem-put-content
https://learn.microsoft.com/en-us/graph/api/driveitem-createuploadsession
https://learn.microsoft.com/en-us/graph/api/driveitem-get-content
https://learn.microsoft.com/en-us/graph/api/driveitem-delete
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from graphworks_core.errors import GraphHTTPError, JobRejected
from graphworks_core.payloads import Attachment
from processors.parts.common import RefreshOnce, explained
from processors.parts.object_store import LocalDirectoryStore, ObjectStore
from processors.parts.scan import load_scan_hook
from processors.parts.sources import LocalFile, source_file
from processors.parts.upload_session import UploadProgress, upload_in_chunks
from worker.context import JobContext
from worker.graph.responses import reply_model, reply_str

DOWNLOAD_CHUNK = 256 * 1024


class DriveItemRef(BaseModel):
    """The fields of Graph's driveItem we keep."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str
    name: str | None = None
    size: int | None = None
    web_url: str | None = Field(None, alias="webUrl")
    e_tag: str | None = Field(None, alias="eTag")


class AttachmentResult(BaseModel):
    operation: Literal["upload", "download", "delete"]
    drive_id: str
    item_path: str
    item: DriveItemRef | None = None
    bytes: int = 0
    stored_at: str | None = None
    chunks: int = 0
    existed: bool = True


def item_url(base_url: str, drive_id: str, item_path: str) -> str:
    """`/drives/{drive-id}/root:/{path}:` (path-addressed; the SDK's builders would escape the slashes)."""
    return f"{base_url}/drives/{quote(drive_id, safe='')}/root:/{quote(item_path.strip('/'), safe='/')}:"


def object_store_for(ctx: JobContext) -> ObjectStore:
    return LocalDirectoryStore(ctx.settings.attachment_download_dir)


async def run_attachment(ctx: JobContext, payload: Attachment) -> AttachmentResult:
    if payload.operation == "upload":
        return await upload(ctx, payload)
    if payload.operation == "download":
        return await download(ctx, payload, object_store_for(ctx))
    return await delete(ctx, payload)


async def _scan(ctx: JobContext, path: Path, name: str) -> None:
    verdict = await load_scan_hook(ctx.settings.attachment_scan_hook).scan(path, name=name)
    if not verdict.clean:
        raise JobRejected(f"{name} was refused by the scan hook: {verdict.detail or 'not clean'}")


async def upload(ctx: JobContext, payload: Attachment) -> AttachmentResult:
    settings = ctx.settings
    async with source_file(payload.local_path, payload.source_url, source_dir=settings.attachment_source_dir,
                           timeout_s=settings.graph_call_timeout_s, what="upload source") as source:  # fmt: skip
        await _scan(ctx, source.path, source.name)
        url = item_url(ctx.graph.base_url, payload.drive_id, payload.item_path)
        refresh = RefreshOnce(ctx)
        if source.size <= settings.attachment_simple_upload_max_bytes:
            data = await asyncio.to_thread(source.path.read_bytes)
            response = await ctx.graph.call_url(
                "PUT",
                f"{url}/content?%40microsoft.graph.conflictBehavior={payload.conflict_behavior}",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
                force_refresh=refresh(),
            )
            chunks = 1
        else:
            response, chunks = await _upload_session(ctx, payload, source, url, refresh)
    item = reply_model(DriveItemRef, response)
    return AttachmentResult(operation="upload", drive_id=payload.drive_id, item_path=payload.item_path,
                            item=item, bytes=source.size, chunks=chunks)  # fmt: skip


async def _upload_session(
    ctx: JobContext, payload: Attachment, source: LocalFile, url: str, refresh: RefreshOnce
) -> tuple[httpx.Response, int]:
    progress = UploadProgress(
        ctx.redis, ctx.envelope.id, ctx.settings.upload_progress_ttl_s,
        report=lambda done, total: ctx.progress(done, total, "bytes"),
    )  # fmt: skip

    async def new_session() -> str:
        body = {"item": {"@microsoft.graph.conflictBehavior": payload.conflict_behavior}}
        response = await ctx.graph.call_url("POST", f"{url}/createUploadSession", json_body=body,
                                            force_refresh=refresh())  # fmt: skip
        return reply_str(response, "uploadUrl")

    chunk = ctx.settings.attachment_chunk_bytes
    response = await upload_in_chunks(ctx.graph, progress, "drive", source, chunk, new_session)
    await progress.clear()
    return response, -(-source.size // chunk)


async def download(ctx: JobContext, payload: Attachment, store: ObjectStore) -> AttachmentResult:
    key = payload.store_key or f"{payload.drive_id}/{payload.item_path.strip('/')}"
    url = item_url(ctx.graph.base_url, payload.drive_id, payload.item_path) + "/content"
    staging = store.staging_dir() / f"{uuid.uuid4().hex}.part"
    written = 0
    try:
        try:
            async with ctx.graph.stream("GET", url, force_refresh=ctx.force_token_refresh) as response:
                with staging.open("wb") as out:
                    async for chunk in response.aiter_bytes(DOWNLOAD_CHUNK):
                        out.write(chunk)
                        written += len(chunk)
        except GraphHTTPError as exc:
            if exc.status == 404:
                raise explained(exc, f"{payload.item_path} does not exist in drive {payload.drive_id}") from exc
            raise
        await _scan(ctx, staging, Path(payload.item_path).name)
        stored_at = await store.put_file(key, staging)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
    return AttachmentResult(operation="download", drive_id=payload.drive_id, item_path=payload.item_path,
                            bytes=written, stored_at=stored_at)  # fmt: skip


async def delete(ctx: JobContext, payload: Attachment) -> AttachmentResult:
    url = item_url(ctx.graph.base_url, payload.drive_id, payload.item_path)
    existed = True
    try:
        await ctx.graph.call_url("DELETE", url, force_refresh=ctx.force_token_refresh)
    except GraphHTTPError as exc:
        if exc.status != 404:
            raise
        existed = False  # already gone: what the job asked for is true
    return AttachmentResult(operation="delete", drive_id=payload.drive_id, item_path=payload.item_path,
                            existed=existed)  # fmt: skip
