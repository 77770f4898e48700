"""A 2xx from Graph whose body does not fit our model is Graph's surprise, not an invalid payload:
it is retried as `unknown` (cause unexpected_reply) with the status and an excerpt of the body in
each attempt record, and never dead-lettered as validation."""

from __future__ import annotations

from pathlib import Path

from graphsim.faults import Fault
from graphworks_core.errors import ErrorClass, UnexpectedGraphReply
from tests.integration.conftest import Pipeline
from tests.processors.conftest import make_file, wait_done
from worker.policy import DEFAULT_POLICIES


async def test_a_2xx_that_does_not_fit_is_retried_as_unknown_then_dead_lettered_as_such(
    files_pipeline: Pipeline, tmp_path: Path
) -> None:
    src = make_file(tmp_path / "s.txt", 1000)
    # What the report's upload got back instead of a driveItem: an upload-session status.
    odd = {"expirationDateTime": "2030-01-01T00:00:00Z", "nextExpectedRanges": ["0-327679"]}
    files_pipeline.sim.state.add_fault(
        Fault(method="PUT", path="/drives/d1/root:/s.txt:/content", kind="reply", status=202, body=odd, times=None)
    )
    await files_pipeline.client.enqueue(
        "attachment", {"operation": "upload", "drive_id": "d1", "item_path": "s.txt", "local_path": str(src)}
    )
    retries = DEFAULT_POLICIES[ErrorClass.UNKNOWN].max_retries
    for _ in range(retries):
        await files_pipeline.advance_to_next_retry()
    await wait_done(files_pipeline)

    (entry,) = await files_pipeline.dead_letters()
    cause = UnexpectedGraphReply.CAUSE
    assert (entry.error_class, entry.cause, entry.status) == (ErrorClass.UNKNOWN, cause, 202)
    assert entry.reason == f"unknown ({cause}): still failing after {retries} retries"
    message = entry.message or ""
    assert message.startswith(
        f"unexpected Graph reply: 202 to PUT {files_pipeline.sim.base_url}/drives/d1/root:/s.txt:"
    )
    assert "does not fit DriveItemRef (id: Field required)" in message
    assert '"nextExpectedRanges":["0-327679"]' in message, "an excerpt of the body"
    assert entry.request_id, "Graph's request-id to quote to support"
    assert len(entry.attempts) == retries + 1
    assert all((a.error_class, a.cause, a.status) == (ErrorClass.UNKNOWN, cause, 202) for a in entry.attempts)
    assert [a.delay_s is not None for a in entry.attempts] == [True] * retries + [False]
    assert all("DriveItemRef" in (a.message or "") for a in entry.attempts)
    assert [r.status for r in files_pipeline.sim.state.requests()] == [202] * (retries + 1)
    snap = await files_pipeline.stats.snapshot()
    assert snap.dead_lettered == 1
