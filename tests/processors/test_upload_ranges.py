"""Upload sessions follow nextExpectedRanges to the end: a range Graph lost is sent again, even when
Graph reports it only on the PUT holding the file's last byte (202 OneDrive, 200 Outlook)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from graphsim.faults import Fault
from graphworks_core import keys
from graphworks_core.envelope import Envelope
from graphworks_core.payloads import Attachment
from processors.attachment import run_attachment
from processors.parts.upload_session import missing_ranges
from tests.integration.conftest import Pipeline, eventually
from tests.processors.conftest import CHUNK, make_file, wait_done
from worker.context import JobContext

MB = 1024 * 1024
SIZE = 1_650_745  # the file of the report: six 320 KiB fragments and a short seventh


def _puts(pipe: Pipeline) -> list[tuple[str, int]]:
    return [(r.headers["content-range"], r.status) for r in pipe.sim.state.requests() if r.method == "PUT"]


def _lose_on_last(lose: tuple[int, int], size: int) -> Fault:
    """Graph loses `lose` and tells so only on the PUT that holds the last byte."""
    return Fault(method="PUT", path="/_uploads/*", kind="lose", lose=lose,
                 headers={"content-range": f"bytes *-{size - 1}/{size}"})  # fmt: skip


async def test_a_range_lost_before_the_last_fragment_is_resent_and_the_upload_completes(
    files_pipeline: Pipeline, tmp_path: Path
) -> None:
    src = make_file(tmp_path / "report.bin", SIZE)
    files_pipeline.sim.state.add_fault(_lose_on_last((0, CHUNK - 1), SIZE))
    payload = {"operation": "upload", "drive_id": "d1", "item_path": "report.bin", "local_path": str(src)}
    env = Envelope(id="job-lost", type="attachment", payload=payload)
    ctx = JobContext(files_pipeline.runner.graph, files_pipeline.redis, files_pipeline.settings,
                     files_pipeline.clock, env)  # fmt: skip

    result = await run_attachment(ctx, Attachment.model_validate(payload))

    starts = range(0, SIZE, CHUNK)
    assert _puts(files_pipeline) == [
        *[(f"bytes {s}-{min(s + CHUNK, SIZE) - 1}/{SIZE}", 202) for s in starts],  # the last one too: 0 is missing
        (f"bytes 0-{CHUNK - 1}/{SIZE}", 201),  # sent again, and only it: now Graph has it all
    ]
    assert _puts(files_pipeline)[-2][0] == "bytes 1638400-1650744/1650745"
    stored = files_pipeline.sim.state.files.item_at("d1", "report.bin")
    assert stored is not None and stored.content == src.read_bytes()
    assert result.item is not None and (result.item.id, result.item.size) == (stored.id, SIZE), "the driveItem"
    assert not await files_pipeline.redis.exists(keys.upload_progress("job-lost"))


async def test_several_missing_ranges_are_each_sent_again(files_pipeline: Pipeline, tmp_path: Path) -> None:
    src = make_file(tmp_path / "report.bin", SIZE)
    state = files_pipeline.sim.state
    # Mid-upload Graph reports two ranges (a lost first fragment and the rest); at the end, another one.
    state.add_fault(Fault(method="PUT", path="/_uploads/*", kind="lose", lose=(0, CHUNK - 1),
                          headers={"content-range": f"bytes {2 * CHUNK}-*"}))  # fmt: skip
    state.add_fault(_lose_on_last((CHUNK, 2 * CHUNK - 1), SIZE))
    await files_pipeline.client.enqueue(
        "attachment", {"operation": "upload", "drive_id": "d1", "item_path": "report.bin", "local_path": str(src)}
    )
    await wait_done(files_pipeline)

    assert (await files_pipeline.stats.snapshot()).completed == 1 and await files_pipeline.dead_letters() == []
    starts = [int(r.split()[1].split("-")[0]) for r, _ in _puts(files_pipeline)]
    assert starts == [0, CHUNK, 2 * CHUNK, 0, 3 * CHUNK, 4 * CHUNK, 5 * CHUNK, CHUNK]
    assert [s for _, s in _puts(files_pipeline)] == [202] * 7 + [201]
    stored = state.files.item_at("d1", "report.bin")
    assert stored is not None and stored.content == src.read_bytes()


async def test_an_outlook_attachment_session_resends_what_the_last_fragment_reports_missing(
    files_pipeline: Pipeline, tmp_path: Path
) -> None:
    size = 3 * MB + 100
    big = make_file(tmp_path / "big.pdf", size)
    files_pipeline.sim.state.add_fault(_lose_on_last((0, MB - 1), size))
    mail = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "S", "body": "b",
            "attachments": [{"path": str(big), "name": "Q1.pdf"}]}  # fmt: skip
    await files_pipeline.client.enqueue("mail", mail)
    await wait_done(files_pipeline)

    assert (await files_pipeline.stats.snapshot()).completed == 1 and await files_pipeline.dead_letters() == []
    assert _puts(files_pipeline) == [
        (f"bytes 0-{MB - 1}/{size}", 200),
        (f"bytes {MB}-{2 * MB - 1}/{size}", 200),
        (f"bytes {2 * MB}-{3 * MB - 1}/{size}", 200),
        (f"bytes {3 * MB}-{size - 1}/{size}", 200),  # Outlook's "not yet": 200 with nextExpectedRanges
        (f"bytes 0-{MB - 1}/{size}", 201),
    ]
    (sent,) = files_pipeline.sim.state.sent_mail()
    assert [a["contentSha256"] for a in sent.message["attachments"]] == [hashlib.sha256(big.read_bytes()).hexdigest()]


@pytest.mark.parametrize(
    ("ranges", "pairs"),
    [
        (["320-"], [(320, 999)]),
        (["0-99", "500-"], [(0, 99), (500, 999)]),
        (["500", "0-99"], [(0, 99), (500, 999)]),  # Outlook's bare start; sorted
        (["900-5000"], [(900, 999)]),  # clipped to the file
    ],
)
def test_next_expected_ranges_are_read_in_every_documented_form(
    ranges: list[str], pairs: list[tuple[int, int]]
) -> None:
    assert missing_ranges(ranges, 1000) == pairs


@pytest.mark.parametrize("bad", [["x-1"], ["1000-"], ["5-2"]])
def test_ranges_outside_the_file_are_refused(bad: list[str]) -> None:
    with pytest.raises(ValueError):
        missing_ranges(bad, 1000)


async def test_an_upload_reports_its_bytes_in_its_status_record(files_pipeline: Pipeline, tmp_path: Path) -> None:
    src = make_file(tmp_path / "big.bin", SIZE)
    # The fourth fragment is held: the record shows the three before it while it waits.
    files_pipeline.sim.state.add_fault(Fault(method="PUT", path="/_uploads/*", kind="slow", delay_s=2.0,
                                             headers={"content-range": f"bytes {3 * CHUNK}-*"}))  # fmt: skip
    job_id = await files_pipeline.client.attachment(
        operation="upload", drive_id="d1", item_path="big.bin", local_path=str(src)
    )

    async def three_fragments() -> bool:
        record = await files_pipeline.client.status(job_id)
        return record.progress is not None and record.progress.done == 3 * CHUNK

    await eventually(three_fragments, timeout_s=20, what="the status record to show three fragments sent")
    running = await files_pipeline.client.status(job_id)
    assert running.status == "running" and running.progress is not None
    assert (running.progress.total, running.progress.unit) == (SIZE, "bytes")
    final = await files_pipeline.client.wait(job_id, timeout_s=30)
    assert final.status == "completed" and final.progress is not None and final.progress.done == SIZE
    stored = files_pipeline.sim.state.files.item_at("d1", "big.bin")
    assert final.result is not None and stored is not None
    assert (final.result["item"]["id"], final.result["item"]["size"]) == (stored.id, SIZE)
