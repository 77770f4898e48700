"""inbound end to end on Redis + graphsim over HTTP: fetch, normalise, stream once; 404 recorded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from graphsim import resources
from graphsim.faults import Fault
from graphworks_core import keys
from graphworks_core.envelope import Envelope
from graphworks_core.errors import ErrorClass, PayloadInvalid
from processors.parts.inbound_message import InboundMessage
from tests.integration.conftest import Pipeline, eventually
from worker.queue import Scheduled
from worker.sinks import set_sink
from worker.sinks.callable_sink import CallableSink

CHAT = "19:abc@thread.v2"
USER = "adele@contoso.com"
MAIL_EXPAND = {"$expand": "attachments($select=id,name,contentType,size,isInline)"}


async def _stream(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [json.loads(f[b"data"]) for _, f in await pipeline.redis.xrange(keys.INBOUND_STREAM)]


async def _done(pipeline: Pipeline, n: int) -> None:
    async def check() -> bool:
        return (await pipeline.completed()) + len(await pipeline.dead_letters()) >= n

    await eventually(check, what=f"{n} finished jobs")


async def _processors(pipeline: Pipeline) -> dict[str, int]:
    return (await pipeline.stats.snapshot()).processors


def _gets(pipeline: Pipeline) -> list[tuple[str, str, dict[str, str], int]]:
    return [(r.method, r.path, r.query, r.status) for r in pipeline.sim.state.requests()]  # type: ignore[attr-defined]


async def test_chat_message_is_fetched_normalised_and_streamed(pipeline: Pipeline) -> None:
    message_id = pipeline.sim.state.seed_chat_message(CHAT, {
        "body": {"contentType": "html", "content": '<p>Hi <at id="0">Bob</at>,</p><p>build&nbsp;<b>green</b></p>'},
        "mentions": [{"id": 0, "mentionText": "Bob", "mentioned": {"user": {"id": "u-bob", "displayName": "Bob"}}}],
        "attachments": [{"id": "att-1", "contentType": "reference", "contentUrl": "https://x/doc.docx",
                         "name": "doc.docx"}],
        "importance": "high",
    })  # fmt: skip
    await pipeline.client.fetch_inbound(resource=f"chats('{CHAT}')/messages('{message_id}')", subscription_id="s-1")
    await _done(pipeline, 1)

    assert _gets(pipeline) == [("GET", f"/chats/{CHAT}/messages/{message_id}", {}, 200)]
    (item,) = await _stream(pipeline)
    msg = InboundMessage.model_validate(item)
    assert (msg.source, msg.id, msg.chat_id, msg.subscription_id) == ("chat", message_id, CHAT, "s-1")
    assert msg.body_text == "Hi Bob,\n\nbuild green"
    assert msg.body_html is not None and "<at id" in msg.body_html
    assert msg.sender is not None and msg.sender.kind == "user" and msg.sender.name == "Graph Simulator"
    assert [(r.role, r.id) for r in msg.recipients] == [("mention", "u-bob")]
    assert [(a.name, a.url) for a in msg.attachments] == [("doc.docx", "https://x/doc.docx")]
    assert msg.thread_id == message_id and msg.importance == "high" and msg.created_at is not None
    assert (await _processors(pipeline))["inbound.delivered"] == 1


async def test_mail_message_in_graphs_notification_form(pipeline: Pipeline) -> None:
    message_id = pipeline.sim.state.seed_mail_message(USER, {
        "subject": "Quarterly", "body": {"contentType": "html", "content": "<div>Numbers<br>attached</div>"},
        "toRecipients": [{"emailAddress": {"name": "Bob", "address": "bob@contoso.com"}}],
        "ccRecipients": [{"emailAddress": {"address": "cc@contoso.com"}}],
        "hasAttachments": True,
        "attachments": [{"id": "a1", "name": "q.xlsx", "contentType": "application/vnd.ms-excel", "size": 2048,
                         "isInline": False}],
    })  # fmt: skip
    await pipeline.client.fetch_inbound(resource=f"Users/{USER}/Messages/{message_id}")
    await _done(pipeline, 1)

    assert _gets(pipeline) == [("GET", f"/users/{USER}/messages/{message_id}", MAIL_EXPAND, 200)]
    msg = InboundMessage.model_validate((await _stream(pipeline))[0])
    assert (msg.source, msg.mailbox, msg.subject) == ("mail", USER, "Quarterly")
    assert msg.body_text == "Numbers\nattached"
    assert [(r.role, r.address) for r in msg.recipients] == [("to", "bob@contoso.com"), ("cc", "cc@contoso.com")]
    assert msg.sender is not None and msg.sender.address == "graphsim@contoso.onmicrosoft.com"
    assert [(a.name, a.size) for a in msg.attachments] == [("q.xlsx", 2048)]
    assert msg.conversation_id and msg.internet_message_id and msg.received_at is not None
    assert msg.version == pipeline.sim.state.mail_message(USER, message_id)["changeKey"]  # type: ignore[index]


async def test_channel_message_and_reply(pipeline: Pipeline) -> None:
    state = pipeline.sim.state
    root = state.next_message_id()
    state.put_channel_message("team-1", "19:chan", resources.chat_message(root, {"subject": "S"}, team_id="team-1",
                                                                         channel_id="19:chan"))  # fmt: skip
    reply = resources.chat_message("999", {"replyToId": root}, team_id="team-1", channel_id="19:chan")
    state.put_channel_message("team-1", "19:chan", reply)
    await pipeline.client.fetch_inbound(resource=f"teams('team-1')/channels('19:chan')/messages('{root}')")
    await pipeline.client.fetch_inbound(
        resource=f"teams('team-1')/channels('19:chan')/messages('{root}')/replies('999')"
    )
    await _done(pipeline, 2)

    paths = sorted(p for _, p, _, _ in _gets(pipeline))
    assert paths == sorted([f"/teams/team-1/channels/19:chan/messages/{root}",
                            f"/teams/team-1/channels/19:chan/messages/{root}/replies/999"])  # fmt: skip
    by_id = {m["id"]: InboundMessage.model_validate(m) for m in await _stream(pipeline)}
    assert by_id[root].source == "channel" and by_id[root].team_id == "team-1" and by_id[root].subject == "S"
    assert (by_id["999"].reply_to_id, by_id["999"].thread_id) == (root, root)


async def test_duplicate_notifications_give_one_item_and_an_edit_gives_another(pipeline: Pipeline) -> None:
    message_id = pipeline.sim.state.seed_chat_message(CHAT, {"body": {"content": "v1"}})
    resource = f"chats/{CHAT}/messages/{message_id}"
    for form in (resource, f"chats('{CHAT}')/messages('{message_id}')", resource):
        await pipeline.client.fetch_inbound(resource=form)
    await _done(pipeline, 3)
    assert [m["body_text"] for m in await _stream(pipeline)] == ["v1"]

    edited = pipeline.sim.state.chat_message(CHAT, message_id)
    assert edited is not None
    edited.update(body={"contentType": "text", "content": "v2"}, lastModifiedDateTime="2030-01-01T00:00:00.000Z")
    pipeline.sim.state.put_chat_message(CHAT, edited)
    await pipeline.client.fetch_inbound(resource=resource)
    await _done(pipeline, 4)

    assert [m["body_text"] for m in await _stream(pipeline)] == ["v1", "v2"]
    counters = await _processors(pipeline)
    assert (counters["inbound.delivered"], counters["inbound.duplicates"]) == (2, 2)
    assert len(_gets(pipeline)) == 4  # every notification fetched; only new versions streamed


async def test_message_deleted_before_the_fetch_is_recorded_not_dead_lettered(pipeline: Pipeline) -> None:
    await pipeline.client.fetch_inbound(resource=f"Users/{USER}/Messages/AAMkgone", subscription_id="s-9")
    await _done(pipeline, 1)

    assert _gets(pipeline) == [("GET", f"/users/{USER}/messages/AAMkgone", MAIL_EXPAND, 404)]
    assert await pipeline.dead_letters() == []
    assert await pipeline.completed() == 1
    assert await _stream(pipeline) == []
    ((_, gone),) = await pipeline.redis.xrange(keys.INBOUND_GONE)
    assert gone[b"resource"] == f"users/{USER.replace('@', '%40')}/messages/AAMkgone".encode()
    assert gone[b"why"] == b"404 ErrorItemNotFound" and gone[b"subscription_id"] == b"s-9"
    assert (await _processors(pipeline))["inbound.gone"] == 1


async def test_a_5xx_on_fetch_is_retried_then_delivered(pipeline: Pipeline) -> None:
    message_id = pipeline.sim.state.seed_chat_message(CHAT, {"body": {"content": "x"}})
    pipeline.sim.state.add_fault(Fault(method="GET", path="/chats/*/messages/*", status=503))
    await pipeline.client.fetch_inbound(resource=f"chats/{CHAT}/messages/{message_id}")
    await pipeline.advance_to_next_retry()
    await _done(pipeline, 1)
    assert [s for *_, s in _gets(pipeline)] == [503, 200]
    assert len(await _stream(pipeline)) == 1


async def test_bad_input_is_refused_or_dead_lettered_as_validation(pipeline: Pipeline) -> None:
    with pytest.raises(PayloadInvalid, match="resource"):
        await pipeline.client.fetch_inbound(resource="subscriptions/abc")
    with pytest.raises(PayloadInvalid, match="resource: Field required"):
        await pipeline.client.enqueue("inbound", {"subscription_id": "s"})
    # What another producer might have put on the queue without the client's check:
    for payload in ({"subscription_id": "s"}, {"resource": "users/u/events/1"}):
        await pipeline.runner.queue.put([Scheduled(Envelope(type="inbound", payload=payload))])
    await _done(pipeline, 2)

    entries = await pipeline.dead_letters()
    assert sorted(e.error_class for e in entries) == [ErrorClass.VALIDATION] * 2
    messages = " | ".join(e.message or "" for e in entries)
    assert "resource" in messages and "Field required" in messages and "does not name one message" in messages
    assert all(len(e.attempts) == 1 for e in entries)
    assert _gets(pipeline) == []


@pytest.fixture
async def callable_items() -> AsyncIterator[list[dict[str, Any]]]:
    got: list[dict[str, Any]] = []
    set_sink(CallableSink(got.extend))
    try:
        yield got
    finally:
        set_sink(None)


async def test_callable_sink_gets_each_version_once(pipeline: Pipeline, callable_items: list[dict[str, Any]]) -> None:
    message_id = pipeline.sim.state.seed_chat_message(CHAT, {"body": {"content": "hello"}})
    for _ in range(2):
        await pipeline.client.fetch_inbound(resource=f"chats/{CHAT}/messages/{message_id}")
    await _done(pipeline, 2)
    assert [i["body_text"] for i in callable_items] == ["hello"]
    assert await _stream(pipeline) == []


async def test_a_failing_external_sink_is_retried_and_then_delivers_once(pipeline: Pipeline) -> None:
    got: list[dict[str, Any]] = []
    calls = 0

    def flaky(items: list[dict[str, Any]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("callback down")
        got.extend(items)

    set_sink(CallableSink(flaky))
    try:
        message_id = pipeline.sim.state.seed_chat_message(CHAT, {"body": {"content": "hello"}})
        await pipeline.client.fetch_inbound(resource=f"chats/{CHAT}/messages/{message_id}")
        await pipeline.advance_to_next_retry()  # the claim was given back, so the retry may deliver
        await _done(pipeline, 1)
    finally:
        set_sink(None)
    assert [i["id"] for i in got] == [message_id] and calls == 2
    assert (await pipeline.stats.snapshot()).by_class["network"]["retried"] == 1
