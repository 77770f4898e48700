"""attachment jobs against graphsim over HTTP: upload (one PUT or a session), download, delete, faults."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from graphsim.faults import Fault
from graphworks_core import keys
from graphworks_core.envelope import Envelope
from graphworks_core.errors import ErrorClass
from graphworks_core.payloads import Attachment
from processors.attachment import AttachmentResult, run_attachment
from processors.parts.scan import ScanVerdict
from processors.parts.upload_session import UploadProgress
from tests.integration.conftest import Pipeline
from tests.processors.conftest import CHUNK, enqueue_raw, eventually, make_file, wait_done
from worker.context import JobContext


def ctx_for(pipe: Pipeline, payload: dict[str, object], job_id: str = "job-1") -> tuple[JobContext, Attachment]:
    env = Envelope(id=job_id, type="attachment", payload=payload)
    return JobContext(pipe.runner.graph, pipe.redis, pipe.settings, pipe.clock, env), Attachment(**payload)  # type: ignore[arg-type]


async def new_session(pipe: Pipeline) -> dict[str, str]:
    """An upload session made outside the job (as a crashed earlier attempt would have)."""
    async with httpx.AsyncClient() as http:
        url = f"{pipe.sim.base_url}/drives/d1/root:/big.bin:/createUploadSession"
        response = await http.post(url, json={}, headers={"Authorization": "Bearer t"})
    return dict(response.json())


def puts(pipe: Pipeline) -> list[str]:
    return [r.headers["content-range"] for r in pipe.sim.state.requests() if r.method == "PUT"]


async def test_small_file_is_one_put(files_pipeline: Pipeline, tmp_path: Path) -> None:
    src = make_file(tmp_path / "s.txt", 1000)
    ctx, payload = ctx_for(
        files_pipeline, {"operation": "upload", "drive_id": "d1", "item_path": "docs/s.txt", "local_path": str(src)}
    )
    result = await run_attachment(ctx, payload)

    (req,) = files_pipeline.sim.state.requests()
    assert (req.method, req.path, req.query) == (
        "PUT",
        "/drives/d1/root:/docs/s.txt:/content",
        {"@microsoft.graph.conflictBehavior": "replace"},
    )
    assert req.body_size == 1000 and req.headers["authorization"] == "Bearer test-token"
    stored = files_pipeline.sim.state.files.item_at("d1", "docs/s.txt")
    assert stored is not None and stored.content == src.read_bytes()
    assert isinstance(result, AttachmentResult) and result.item and result.item.id == stored.id
    assert (result.bytes, result.chunks) == (1000, 1)


async def test_large_file_goes_by_session_in_320k_chunks(files_pipeline: Pipeline, tmp_path: Path) -> None:
    size = CHUNK * 3 + 5000
    src = make_file(tmp_path / "big.bin", size)
    job_id = await files_pipeline.client.enqueue(
        "attachment", {"operation": "upload", "drive_id": "d1", "item_path": "big.bin", "local_path": str(src)}
    )
    await wait_done(files_pipeline)
    assert (await files_pipeline.stats.snapshot()).completed == 1

    reqs = files_pipeline.sim.state.requests()
    assert [(r.method, r.path.split("/_uploads/")[0]) for r in reqs] == [
        ("POST", "/drives/d1/root:/big.bin:/createUploadSession"),
        *[("PUT", "")] * 4,
    ]
    assert reqs[0].body == {"item": {"@microsoft.graph.conflictBehavior": "replace"}}
    assert puts(files_pipeline) == [f"bytes {s}-{min(s + CHUNK, size) - 1}/{size}" for s in range(0, size, CHUNK)]
    assert all("authorization" not in r.headers for r in reqs[1:]), "upload URLs are pre-authenticated"
    assert files_pipeline.sim.state.files.item_at("d1", "big.bin").content == src.read_bytes()  # type: ignore[union-attr]
    assert not await files_pipeline.redis.exists(keys.upload_progress(job_id)), "progress is removed when done"


async def test_429_mid_upload_resumes_from_the_right_byte(files_pipeline: Pipeline, tmp_path: Path) -> None:
    size = CHUNK * 4
    src = make_file(tmp_path / "big.bin", size)
    state = files_pipeline.sim.state
    state.add_fault(Fault(method="PUT", path="/_uploads/*", kind="slow", delay_s=0, times=2))  # two go through
    state.add_fault(Fault(method="PUT", path="/_uploads/*", status=429, retry_after="7.5"))
    await files_pipeline.client.enqueue(
        "attachment", {"operation": "upload", "drive_id": "d1", "item_path": "big.bin", "local_path": str(src)}
    )

    assert await files_pipeline.advance_to_next_retry() == pytest.approx(7.5, abs=0.01)
    await eventually(lambda: _completed(files_pipeline), what="the resumed upload")

    starts = [int(r.split()[1].split("-")[0]) for r in puts(files_pipeline)]
    assert starts == [0, CHUNK, 2 * CHUNK, 2 * CHUNK, 3 * CHUNK], "resumed at the refused fragment, not at 0"
    assert [r.method for r in state.requests()].count("POST") == 1, "the same session was resumed"
    assert state.files.item_at("d1", "big.bin").content == src.read_bytes()  # type: ignore[union-attr]


async def test_416_queries_the_session_and_resumes_where_graph_says(files_pipeline: Pipeline, tmp_path: Path) -> None:
    size = CHUNK * 3
    src = make_file(tmp_path / "big.bin", size)
    data = src.read_bytes()
    session = await new_session(files_pipeline)
    # Graph got the first fragment but the worker died before it wrote its progress down.
    async with httpx.AsyncClient() as http:
        await http.put(
            session["uploadUrl"], content=data[:CHUNK], headers={"Content-Range": f"bytes 0-{CHUNK - 1}/{size}"}
        )
    ctx, payload = ctx_for(
        files_pipeline, {"operation": "upload", "drive_id": "d1", "item_path": "big.bin", "local_path": str(src)}
    )
    await UploadProgress(files_pipeline.redis, "job-1", 60).set({"url:drive": session["uploadUrl"], "next:drive": 0})
    files_pipeline.sim.state.clear_requests()

    await run_attachment(ctx, payload)
    got = [(r.method, r.status, r.headers.get("content-range")) for r in files_pipeline.sim.state.requests()]
    assert got == [
        ("PUT", 416, f"bytes 0-{CHUNK - 1}/{size}"),
        ("GET", 200, None),
        ("PUT", 202, f"bytes {CHUNK}-{2 * CHUNK - 1}/{size}"),
        ("PUT", 201, f"bytes {2 * CHUNK}-{size - 1}/{size}"),
    ]
    assert files_pipeline.sim.state.files.item_at("d1", "big.bin").content == data  # type: ignore[union-attr]


async def test_expired_session_404_starts_a_new_one(files_pipeline: Pipeline, tmp_path: Path) -> None:
    src = make_file(tmp_path / "big.bin", CHUNK * 2)
    session = await new_session(files_pipeline)
    await UploadProgress(files_pipeline.redis, "job-1", 60).set(
        {"url:drive": session["uploadUrl"], "next:drive": CHUNK}
    )
    files_pipeline.sim.state.files.expire_sessions()
    files_pipeline.sim.state.clear_requests()
    ctx, payload = ctx_for(
        files_pipeline, {"operation": "upload", "drive_id": "d1", "item_path": "big.bin", "local_path": str(src)}
    )
    await run_attachment(ctx, payload)
    got = [(r.method, r.status, r.headers.get("content-range")) for r in files_pipeline.sim.state.requests()]
    size = 2 * CHUNK
    assert got == [
        ("PUT", 404, f"bytes {CHUNK}-{size - 1}/{size}"),
        ("POST", 200, None),
        ("PUT", 202, f"bytes 0-{CHUNK - 1}/{size}"),
        ("PUT", 201, f"bytes {CHUNK}-{size - 1}/{size}"),
    ]


async def test_download_streams_to_the_store(files_pipeline: Pipeline, tmp_path: Path) -> None:
    content = make_file(tmp_path / "src.bin", 700_000).read_bytes()
    files_pipeline.sim.state.files.put_item("d1", "reports/q1.pdf", content)
    ctx, payload = ctx_for(files_pipeline, {"operation": "download", "drive_id": "d1", "item_path": "reports/q1.pdf"})
    result = await run_attachment(ctx, payload)

    target = tmp_path / "downloads" / "d1" / "reports" / "q1.pdf"
    assert result.stored_at == str(target) and result.bytes == len(content)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(content).digest()
    first, second = files_pipeline.sim.state.requests()
    assert (first.method, first.path, first.status) == ("GET", "/drives/d1/root:/reports/q1.pdf:/content", 302)
    assert second.path.startswith("/_downloads/") and second.status == 200
    assert not list((tmp_path / "downloads" / ".partial").iterdir()), "no partial file left behind"


async def test_delete_and_delete_of_a_missing_item(files_pipeline: Pipeline) -> None:
    files_pipeline.sim.state.files.put_item("d1", "old.txt", b"x")
    ctx, payload = ctx_for(files_pipeline, {"operation": "delete", "drive_id": "d1", "item_path": "old.txt"})
    assert (await run_attachment(ctx, payload)).existed is True
    assert files_pipeline.sim.state.files.item_at("d1", "old.txt") is None
    assert (await run_attachment(ctx, payload)).existed is False, "already gone counts as deleted"
    assert [(r.method, r.path, r.status) for r in files_pipeline.sim.state.requests()] == [
        ("DELETE", "/drives/d1/root:/old.txt:", 204),
        ("DELETE", "/drives/d1/root:/old.txt:", 404),
    ]


async def test_missing_local_file_is_dead_lettered_at_once(files_pipeline: Pipeline, tmp_path: Path) -> None:
    await files_pipeline.client.enqueue(
        "attachment",
        {"operation": "upload", "drive_id": "d1", "item_path": "a", "local_path": str(tmp_path / "nope.bin")},
    )
    await wait_done(files_pipeline)
    (entry,) = await files_pipeline.dead_letters()
    assert entry.error_class == ErrorClass.VALIDATION and len(entry.attempts) == 1
    assert "nope.bin' does not exist on the worker" in entry.message
    assert files_pipeline.sim.state.requests() == []


async def test_missing_field_is_dead_lettered_at_once(files_pipeline: Pipeline) -> None:
    await enqueue_raw(files_pipeline, "attachment", {"operation": "upload", "item_path": "a", "local_path": "/x"})
    await wait_done(files_pipeline)
    (entry,) = await files_pipeline.dead_letters()
    assert entry.error_class == ErrorClass.VALIDATION and "drive_id" in entry.message


class Refuse:
    async def scan(self, path: Path, *, name: str) -> ScanVerdict:
        return ScanVerdict(False, f"EICAR test signature in {name}")


REFUSE = Refuse()


async def test_scan_hook_refusal_is_validation(files_pipeline: Pipeline, tmp_path: Path) -> None:
    src = make_file(tmp_path / "eicar.txt", 100)
    settings = files_pipeline.settings.model_copy(update={"attachment_scan_hook": f"{__name__}:REFUSE"})
    env = Envelope(type="attachment", payload={})
    ctx = JobContext(files_pipeline.runner.graph, files_pipeline.redis, settings, files_pipeline.clock, env)
    payload = Attachment(operation="upload", drive_id="d1", item_path="e.txt", local_path=str(src))
    with pytest.raises(Exception, match=r"refused by the scan hook: EICAR test signature in eicar\.txt") as info:
        await run_attachment(ctx, payload)
    assert type(info.value).__name__ == "JobRejected"
    assert files_pipeline.sim.state.requests() == []


async def _completed(pipe: Pipeline) -> bool:
    return (await pipe.stats.snapshot()).completed == 1
