"""mail jobs with attachments against graphsim over HTTP: inline, draft + upload session, faults, bad input."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from graphsim.faults import Fault
from graphworks_core.envelope import Envelope
from graphworks_core.errors import ErrorClass
from graphworks_core.payloads import Mail
from processors.mail import MailAccepted, send_mail
from tests.integration.conftest import Pipeline
from tests.processors.conftest import enqueue_raw, eventually, make_file, wait_done
from worker.context import JobContext

MB = 1024 * 1024
BASE = {
    "mailbox": "shared-ops@contoso.com",
    "to": ["a@contoso.com"],
    "cc": ["c@contoso.com"],
    "bcc": ["b@contoso.com"],
    "reply_to": ["r@contoso.com"],
    "subject": "Report",
    "body": "<p>see</p>",
    "body_type": "html",
    "importance": "high",
}


def ctx_for(pipe: Pipeline, payload: dict[str, object]) -> tuple[JobContext, Mail]:
    env = Envelope(id="mail-job", type="mail", payload=payload)
    return JobContext(pipe.runner.graph, pipe.redis, pipe.settings, pipe.clock, env), Mail(**payload)  # type: ignore[arg-type]


def _addr(a: str) -> dict[str, object]:
    return {"emailAddress": {"address": a}}


async def test_small_attachments_go_inline_in_sendmail(files_pipeline: Pipeline, tmp_path: Path) -> None:
    src = make_file(tmp_path / "notes.txt", 2000)
    payload = {**BASE, "attachments": [{"path": str(src), "content_type": "text/plain"}]}
    ctx, model = ctx_for(files_pipeline, payload)
    result = await send_mail(ctx, model)

    (req,) = files_pipeline.sim.state.requests()
    assert (req.method, req.path, req.status) == ("POST", "/users/shared-ops@contoso.com/sendMail", 202)
    assert req.body == {
        "message": {
            "subject": "Report",
            "body": {"contentType": "html", "content": "<p>see</p>"},
            "toRecipients": [_addr("a@contoso.com")],
            "importance": "high",
            "ccRecipients": [_addr("c@contoso.com")],
            "bccRecipients": [_addr("b@contoso.com")],
            "replyTo": [_addr("r@contoso.com")],
            "attachments": [
                {
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": "notes.txt",
                    "contentBytes": base64.b64encode(src.read_bytes()).decode(),
                    "isInline": False,
                    "contentType": "text/plain",
                }
            ],
        },
        "saveToSentItems": True,
    }
    assert result == MailAccepted(mailbox="shared-ops@contoso.com", request_id=req.request_id, attachments=1)


async def test_large_attachment_goes_by_draft_upload_session_and_send(files_pipeline: Pipeline, tmp_path: Path) -> None:
    big = make_file(tmp_path / "big.pdf", 3 * MB + 100)
    small = make_file(tmp_path / "small.txt", 10)
    payload = {**BASE, "attachments": [{"path": str(small)}, {"path": str(big), "name": "Q1.pdf"}]}
    ctx, model = ctx_for(files_pipeline, payload)
    result = await send_mail(ctx, model)

    reqs = files_pipeline.sim.state.requests()
    draft_id = result.message_id
    assert draft_id
    user = "/users/shared-ops@contoso.com/messages"
    assert [(r.method, r.path if not r.path.startswith("/_uploads/") else "upload", r.status) for r in reqs] == [
        ("POST", user, 201),
        ("POST", f"{user}/{draft_id}/attachments", 201),
        ("POST", f"{user}/{draft_id}/attachments/createUploadSession", 201),
        ("PUT", "upload", 200),
        ("PUT", "upload", 200),
        ("PUT", "upload", 200),
        ("PUT", "upload", 201),
        ("POST", f"{user}/{draft_id}/send", 202),
    ]
    assert reqs[0].body["toRecipients"] == [_addr("a@contoso.com")] and "attachments" not in reqs[0].body
    assert reqs[2].body == {
        "AttachmentItem": {"attachmentType": "file", "name": "Q1.pdf", "size": 3 * MB + 100, "isInline": False}
    }
    size = 3 * MB + 100
    assert [r.headers["content-range"] for r in reqs[3:7]] == [
        f"bytes 0-{MB - 1}/{size}",
        f"bytes {MB}-{2 * MB - 1}/{size}",
        f"bytes {2 * MB}-{3 * MB - 1}/{size}",
        f"bytes {3 * MB}-{size - 1}/{size}",
    ]
    assert all("authorization" not in r.headers for r in reqs[3:7])
    (sent,) = files_pipeline.sim.state.sent_mail()
    assert {a["name"]: a["contentSha256"] for a in sent.message["attachments"]} == {
        "small.txt": hashlib.sha256(small.read_bytes()).hexdigest(),
        "Q1.pdf": hashlib.sha256(big.read_bytes()).hexdigest(),
    }
    assert result.attachments == 2


async def test_429_mid_upload_resumes_from_next_expected_range(files_pipeline: Pipeline, tmp_path: Path) -> None:
    big = make_file(tmp_path / "big.bin", 4 * MB)
    state = files_pipeline.sim.state
    state.add_fault(Fault(method="PUT", path="/_uploads/*", kind="slow", delay_s=0, times=2))
    state.add_fault(Fault(method="PUT", path="/_uploads/*", status=429, retry_after="2"))
    await files_pipeline.client.enqueue("mail", {**BASE, "attachments": [{"path": str(big)}]})
    assert await files_pipeline.advance_to_next_retry() == pytest.approx(2.0, abs=0.01)
    await eventually(lambda: _completed(files_pipeline), what="the resumed mail")

    reqs = state.requests()
    starts = [int(r.headers["content-range"].split()[1].split("-")[0]) for r in reqs if r.method == "PUT"]
    assert starts == [0, MB, 2 * MB, 2 * MB, 3 * MB]
    posts = [r.path.rsplit("/", 1)[-1] for r in reqs if r.method == "POST"]
    assert posts == ["messages", "createUploadSession", "send"], "one draft, one session, resumed"
    assert len(state.sent_mail()) == 1


async def test_attachment_path_that_does_not_exist_is_validation(files_pipeline: Pipeline, tmp_path: Path) -> None:
    await files_pipeline.client.enqueue("mail", {**BASE, "attachments": [{"path": str(tmp_path / "gone.pdf")}]})
    await wait_done(files_pipeline)
    (entry,) = await files_pipeline.dead_letters()
    assert entry.error_class == ErrorClass.VALIDATION and len(entry.attempts) == 1
    assert "attachment 1" in entry.message and "gone.pdf' does not exist on the worker" in entry.message
    assert files_pipeline.sim.state.requests() == []


async def test_unknown_mailbox_404_is_validation_naming_the_mailbox(files_pipeline: Pipeline) -> None:
    files_pipeline.sim.state.add_fault(
        Fault(
            method="POST",
            path="/users/*/sendMail",
            status=404,
            graph_code="ErrorInvalidUser",
            message="The requested user 'nobody@contoso.com' is invalid.",
        )
    )
    await files_pipeline.client.enqueue("mail", {**BASE, "mailbox": "nobody@contoso.com"})
    await wait_done(files_pipeline)
    (entry,) = await files_pipeline.dead_letters()
    assert (entry.error_class, entry.status, entry.graph_code) == (ErrorClass.VALIDATION, 404, "ErrorInvalidUser")
    assert "mailbox nobody@contoso.com was not found" in entry.message and len(entry.attempts) == 1


async def test_missing_field_is_validation_at_once(files_pipeline: Pipeline) -> None:
    await enqueue_raw(files_pipeline, "mail", {"mailbox": "a@contoso.com", "subject": "s", "body": "b"})
    await wait_done(files_pipeline)
    (entry,) = await files_pipeline.dead_letters()
    assert entry.error_class == ErrorClass.VALIDATION and len(entry.attempts) == 1
    assert "to\n  Field required" in entry.message, entry.message


async def _completed(pipe: Pipeline) -> bool:
    return (await pipe.stats.snapshot()).completed == 1
