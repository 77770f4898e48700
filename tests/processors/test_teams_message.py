"""teams_message jobs against graphsim over HTTP: mentions, files by reference, size limit, bad input."""

from __future__ import annotations

import pytest

from graphsim.faults import Fault
from graphworks_core.envelope import Envelope
from graphworks_core.errors import ErrorClass
from graphworks_core.payloads import TEAMS_MAX_BODY_BYTES, TeamsMessage
from processors.teams_message import SentChatMessage, send_teams_message
from tests.integration.conftest import Pipeline
from tests.processors.conftest import enqueue_raw, wait_done
from worker.context import JobContext


def ctx_for(pipe: Pipeline, payload: dict[str, object]) -> tuple[JobContext, TeamsMessage]:
    env = Envelope(type="teams_message", payload=payload)
    return JobContext(pipe.runner.graph, pipe.redis, pipe.settings, pipe.clock, env), TeamsMessage(**payload)  # type: ignore[arg-type]


async def test_mentions_and_file_references_reach_graph_exactly(files_pipeline: Pipeline) -> None:
    files_pipeline.sim.state.files.put_item("drive-9", "Shared/budget.xlsx", b"cells")
    item = files_pipeline.sim.state.files.item_at("drive-9", "Shared/budget.xlsx")
    assert item is not None
    payload = {
        "chat_id": "19:abc@thread.v2",
        "content": 'Hi <at id="0">Jane</at>, the budget:',
        "content_type": "html",
        "importance": "urgent",
        "mentions": [{"id": 0, "text": "Jane", "user_id": "u-jane", "display_name": "Jane Smith"}],
        "attachments": [
            {"drive_id": "drive-9", "item_id": item.id},
            {
                "id": "11111111-2222-3333-4444-555555555555",
                "web_url": "https://contoso.sharepoint.com/x.docx",
                "name": "x.docx",
            },
        ],
    }
    ctx, model = ctx_for(files_pipeline, payload)
    result = await send_teams_message(ctx, model)

    lookup, post = files_pipeline.sim.state.requests()
    assert (lookup.method, lookup.path) == ("GET", f"/drives/drive-9/items/{item.id}")
    guid = item.etag_guid
    assert (post.method, post.path, post.status) == ("POST", "/chats/19:abc@thread.v2/messages", 201)
    assert post.body == {
        "body": {
            "contentType": "html",
            "content": 'Hi <at id="0">Jane</at>, the budget:'
            '<attachment id="11111111-2222-3333-4444-555555555555"></attachment>'
            f'<attachment id="{guid}"></attachment>',
        },
        "importance": "urgent",
        "mentions": [
            {
                "id": 0,
                "mentionText": "Jane",
                "mentioned": {"user": {"id": "u-jane", "displayName": "Jane Smith", "userIdentityType": "aadUser"}},
            }
        ],
        "attachments": [
            {
                "id": "11111111-2222-3333-4444-555555555555",
                "contentType": "reference",
                "contentUrl": "https://contoso.sharepoint.com/x.docx",
                "name": "x.docx",
            },
            {
                "id": guid,
                "contentType": "reference",
                "contentUrl": "https://contoso.sharepoint.com/sites/sim/drive-9/Shared/budget.xlsx",
                "name": "budget.xlsx",
            },
        ],
    }
    assert isinstance(result, SentChatMessage) and result.chat_id == "19:abc@thread.v2" and result.id


async def test_text_with_a_file_becomes_escaped_html(files_pipeline: Pipeline) -> None:
    ref = {"id": "11111111-2222-3333-4444-555555555555", "web_url": "https://x/y.txt"}
    ctx, model = ctx_for(
        files_pipeline, {"team_id": "t1", "channel_id": "19:c", "content": "a < b", "attachments": [ref]}
    )
    await send_teams_message(ctx, model)
    (post,) = files_pipeline.sim.state.requests()
    assert post.path == "/teams/t1/channels/19:c/messages"
    assert post.body["body"] == {
        "contentType": "html",
        "content": 'a &lt; b<attachment id="' + ref["id"] + '"></attachment>',
    }


def test_mention_without_its_tag_is_refused_by_the_model() -> None:
    with pytest.raises(ValueError, match=r'mention 1 has no <at id="1">'):
        TeamsMessage(chat_id="c", content="hi", content_type="html", mentions=[{"id": 1, "text": "x", "user_id": "u"}])  # type: ignore[list-item]


async def test_whole_body_over_the_limit_is_rejected_before_any_call(files_pipeline: Pipeline) -> None:
    content = '<at id="0">J</at>' + "x" * (TEAMS_MAX_BODY_BYTES - 200)  # content alone is under the limit
    mentions = [{"id": 0, "text": "J", "user_id": "u" * 300}]
    await files_pipeline.client.enqueue(
        "teams_message", {"chat_id": "19:c", "content": content, "content_type": "html", "mentions": mentions}
    )
    await wait_done(files_pipeline)
    (entry,) = await files_pipeline.dead_letters()
    assert entry.error_class == ErrorClass.VALIDATION and len(entry.attempts) == 1
    assert "over Teams' 28672 byte limit" in entry.message
    assert files_pipeline.sim.state.requests() == []


async def test_oversize_content_in_a_raw_job_is_dead_lettered(files_pipeline: Pipeline) -> None:
    await enqueue_raw(files_pipeline, "teams_message", {"chat_id": "19:c", "content": "x" * 30_000})
    await wait_done(files_pipeline)
    (entry,) = await files_pipeline.dead_letters()
    assert entry.error_class == ErrorClass.VALIDATION and "byte message limit" in entry.message


async def test_unknown_chat_is_validation_naming_the_chat(files_pipeline: Pipeline) -> None:
    files_pipeline.sim.state.add_fault(
        Fault(method="POST", path="/chats/*/messages", status=404, graph_code="NotFound", message="Chat not found")
    )
    await files_pipeline.client.send_teams_message(chat_id="19:nope", content="hi")
    await wait_done(files_pipeline)
    (entry,) = await files_pipeline.dead_letters()
    assert (entry.error_class, entry.status, len(entry.attempts)) == (ErrorClass.VALIDATION, 404, 1)
    assert "chat 19:nope was not found" in entry.message


async def test_missing_field_is_validation_at_once(files_pipeline: Pipeline) -> None:
    await enqueue_raw(files_pipeline, "teams_message", {"chat_id": "19:c"})
    await wait_done(files_pipeline)
    (entry,) = await files_pipeline.dead_letters()
    assert entry.error_class == ErrorClass.VALIDATION and "content\n  Field required" in entry.message


async def test_unresolvable_file_reference_is_rejected(files_pipeline: Pipeline) -> None:
    ctx, model = ctx_for(
        files_pipeline, {"chat_id": "c", "content": "x", "attachments": [{"drive_id": "d", "item_id": "i"}]}
    )
    with pytest.raises(Exception, match="the file i in drive d to attach was not found"):
        await send_teams_message(ctx, model)
