"""Pure parts of inbound and sync: resource parsing, HTML to text, the HTTP sink's signature and
status mapping, sync item versions and removals."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest

from graphworks_core.errors import JobRejected
from graphworks_core.resource_path import parse_message_resource
from processors.parts.html_text import html_to_text
from processors.parts.sync_targets import removal_reason, version_of
from worker.sinks import SinkRecord
from worker.sinks.http_callback import SIGNATURE_HEADER, HttpCallbackSink, SinkUnavailable, verify_signature


@pytest.mark.parametrize(
    ("resource", "source", "ids"),
    [
        ("chats('19:abc@thread.v2')/messages('1616990032035')", "chat", ("19:abc@thread.v2", "1616990032035")),
        ("chats/19:abc@thread.v2/messages/16", "chat", ("19:abc@thread.v2", "16")),
        ("teams('t-1')/channels('19:c@thread.tacv2')/messages('16')", "channel", ("t-1", "19:c@thread.tacv2", "16")),
        ("teams('t')/channels('c')/messages('1')/replies('2')", "channel", ("t", "c", "1", "2")),
        ("Users/8ea0e38b/Messages/AAMkAD-x_y=", "mail", ("8ea0e38b", "AAMkAD-x_y=")),
        ("/users/a@b.com/mailFolders('Inbox')/messages('AAMk')", "mail", ("a@b.com", "AAMk")),
        ("https://graph.microsoft.com/v1.0/users/u/messages/m", "mail", ("u", "m")),
        ("chats('it''s')/messages('1')", "chat", ("it's", "1")),
    ],
)
def test_notification_resources_in_every_form_graph_sends(resource: str, source: str, ids: tuple[str, ...]) -> None:
    ref = parse_message_resource(resource)
    got = tuple(x for x in (ref.user_id, ref.chat_id, ref.team_id, ref.channel_id, ref.parent_id, ref.message_id) if x)
    assert (ref.source, got) == (source, ids)


def test_spellings_of_one_message_share_a_canonical_form() -> None:
    forms = [
        "chats('19:a@thread.v2')/messages('5')",
        "chats/19:a@thread.v2/messages/5",
        "/Chats/19%3Aa%40thread.v2/Messages/5",
    ]
    assert len({parse_message_resource(f).canonical for f in forms}) == 1


@pytest.mark.parametrize("resource", ["chats/1", "users/u/events/1", "subscriptions/x", "teams('t')/channels('c')"])
def test_resources_that_name_no_message_are_refused(resource: str) -> None:
    with pytest.raises(ValueError, match="does not name one message"):
        parse_message_resource(resource)


def test_html_to_text_keeps_the_reading_order_and_structure() -> None:
    html = (
        "<html><head><style>p{color:red}</style></head><body><p>Hi&nbsp;<at id='0'>Ann</at>,</p>"
        "<div>line one<br>line   two</div><ul><li>a</li><li>b &amp; c</li></ul><script>x()</script></body></html>"
    )
    assert html_to_text(html) == "Hi Ann,\n\nline one\nline two\n\n- a\n- b & c"


def test_removals_and_versions_per_resource() -> None:
    assert removal_reason({"id": "1", "@removed": {"reason": "changed"}}) == "changed"
    assert removal_reason({"id": "1", "deleted": {"state": "deleted"}}) == "deleted"
    assert removal_reason({"id": "1", "deletedDateTime": "2024-01-01T00:00:00Z"}) == "deleted"
    assert removal_reason({"id": "1", "subject": "x"}) is None
    assert version_of({"changeKey": "ck", "lastModifiedDateTime": "t"}) == "ck"
    assert version_of({"eTag": '"{x},3"', "lastModifiedDateTime": "t"}) == '"{x},3"'
    assert version_of({"a": 1}) == version_of({"a": 1}) != version_of({"a": 2})


async def test_http_sink_signs_the_exact_body_and_maps_statuses() -> None:
    seen: list[httpx.Request] = []
    statuses = iter([204, 503, 401])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(statuses), text="nope")

    sink = HttpCallbackSink(
        "https://hooks.example/in", "s3cret", client=httpx.AsyncClient(transport=httpx.MockTransport(handler))
    )
    records = [SinkRecord(json.dumps({"id": "1"})), SinkRecord(json.dumps({"id": "2"}))]
    await sink.send(records)
    body = seen[0].content
    assert json.loads(body) == {"items": [{"id": "1"}, {"id": "2"}]}
    # HMAC-SHA256 of the exact body bytes, computed here rather than with the module's own sign()
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert seen[0].headers[SIGNATURE_HEADER] == expected
    assert verify_signature(body, seen[0].headers[SIGNATURE_HEADER], "s3cret")
    assert not verify_signature(body, "sha256=" + hmac.new(b"s3cret", body, hashlib.sha1).hexdigest(), "s3cret")
    assert not verify_signature(body + b" ", seen[0].headers[SIGNATURE_HEADER], "s3cret")
    assert not verify_signature(body, seen[0].headers[SIGNATURE_HEADER], "other")
    with pytest.raises(SinkUnavailable):  # retried with backoff (network class)
        await sink.send(records)
    with pytest.raises(JobRejected, match="INBOUND_HTTP_SECRET"):  # a config problem: dead-lettered
        await sink.send(records)
    await sink.close()
