"""Where a file to upload or attach comes from: a local path or an http(s) URL, never the job itself.

A local path must exist (and lie under ATTACHMENT_SOURCE_DIR when that is set); a URL is fetched,
streamed, into a temporary file first, because an upload session needs the size up front and a
retry must be able to read the same bytes again. A file that cannot be had is a JobRejected
(validation) with a message naming it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from graphworks_core.errors import JobRejected, NetworkError
from worker.graph.responses import raise_for_status

FETCH_CHUNK = 256 * 1024


@dataclass(frozen=True)
class LocalFile:
    path: Path
    size: int
    name: str


def local_file(path_text: str, source_dir: Path | None, *, what: str = "file") -> LocalFile:
    path = Path(path_text)
    if source_dir is not None:
        root = source_dir.resolve()
        path = (root / path).resolve()
        if not path.is_relative_to(root):
            raise JobRejected(f"{what} path {path_text!r} is outside ATTACHMENT_SOURCE_DIR ({root})")
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise JobRejected(f"{what} {path_text!r} does not exist on the worker (path given in the job)") from exc
    except OSError as exc:
        raise JobRejected(f"{what} {path_text!r} cannot be read: {exc.strerror}") from exc
    if not path.is_file():
        raise JobRejected(f"{what} {path_text!r} is not a regular file")
    if not os.access(path, os.R_OK):
        raise JobRejected(f"{what} {path_text!r} is not readable by the worker")
    return LocalFile(path, size, path.name)


@contextlib.asynccontextmanager
async def fetched(url: str, *, timeout_s: float, what: str = "file") -> AsyncIterator[LocalFile]:
    """The file at `url`, streamed to a temporary file that is removed afterwards."""
    name = Path(unquote(urlparse(url).path)).name or "download"
    with tempfile.TemporaryDirectory(prefix="graphworks-src-") as tmp:
        target = Path(tmp) / name
        try:
            async with (
                httpx.AsyncClient(timeout=timeout_s, follow_redirects=True) as http,
                http.stream("GET", url) as response,
            ):
                if response.status_code in (404, 410):
                    raise JobRejected(f"{what} URL {url} answered {response.status_code}: it does not exist")
                if not response.is_success:
                    await response.aread()
                    raise_for_status(response)
                with target.open("wb") as out:
                    async for chunk in response.aiter_bytes(FETCH_CHUNK):
                        out.write(chunk)
        except httpx.TransportError as exc:
            raise NetworkError(f"fetching {what} {url}: {type(exc).__name__}: {exc}") from exc
        yield LocalFile(target, target.stat().st_size, name)


@contextlib.asynccontextmanager
async def source_file(
    path: str | None, url: str | None, *, source_dir: Path | None, timeout_s: float, what: str = "file"
) -> AsyncIterator[LocalFile]:
    """A local file for either kind of reference."""
    if path is not None:
        yield local_file(path, source_dir, what=what)
        return
    assert url is not None  # the payload models require one of them
    async with fetched(url, timeout_s=timeout_s, what=what) as found:
        yield found
