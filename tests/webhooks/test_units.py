"""The receiver's plain functions: handshake token, content type, body, clientState, routing, lifetimes, crypto."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from graphsim.subscriptions import encrypt_content
from tests.webhooks.conftest import CERT_ID, key_store
from webhooks.validation import BadDelivery, check_content_type, parse_delivery, validation_token
from worker.subscriptions import counters as c
from worker.subscriptions.client_state import (
    MAX_CLIENT_STATE_CHARS,
    client_state_digest,
    client_state_ok,
    new_client_state,
)
from worker.subscriptions.crypto import DecryptError, decrypt_content
from worker.subscriptions.lifetimes import max_expiration_minutes
from worker.subscriptions.routing import InboundRoute, SyncRoute, resync_route, route_change


def test_validation_token_is_url_decoded() -> None:
    raw = b"validationToken=Validation%3A%20Testing+client%20application%20reachability"
    assert validation_token(raw, max_chars=1024) == "Validation: Testing client application reachability"
    assert validation_token(b"", max_chars=1024) is None
    assert validation_token(b"other=1", max_chars=1024) is None


def test_overlong_validation_token_is_400() -> None:
    with pytest.raises(BadDelivery) as info:
        validation_token("validationToken=" + "a" * 1025, max_chars=1024)
    assert (info.value.status, info.value.counter) == (400, c.REJECTED_VALIDATION_TOKEN)


@pytest.mark.parametrize("header", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_content_types_pass(header: str) -> None:
    check_content_type(header)


@pytest.mark.parametrize("header", [None, "", "text/plain", "application/x-www-form-urlencoded", "application/jsonx"])
def test_other_content_types_are_415(header: str | None) -> None:
    with pytest.raises(BadDelivery) as info:
        check_content_type(header)
    assert info.value.status == 415


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"value": 3}', b"\xff\xfe", b'{"value": [], "validationTokens": [1]}'])
def test_malformed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(BadDelivery) as info:
        parse_delivery(body)
    assert (info.value.status, info.value.counter) == (400, c.REJECTED_MALFORMED_JSON)


def test_parse_delivery_keeps_items_and_tokens() -> None:
    d = parse_delivery(b'{"value": [{"subscriptionId": "s"}, 3], "validationTokens": ["t"]}')
    assert d.items == [{"subscriptionId": "s"}, 3] and d.validation_tokens == ["t"]


def test_client_state_is_random_max_length_and_checked_in_full() -> None:
    a, b = new_client_state(), new_client_state()
    assert len(a) == MAX_CLIENT_STATE_CHARS and a != b
    digest = client_state_digest(a)
    assert client_state_ok(a, digest)
    assert not client_state_ok(b, digest)
    assert not client_state_ok(a[:-1], digest)
    assert not client_state_ok(None, digest)
    assert not client_state_ok(a + "x", digest)  # overlong never matches


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("Users/u-1/Messages/AAMk=", "inbound"),
        ("users/u-1/mailFolders('inbox')/messages('AAMk')", "inbound"),
        ("chats('19:abc@thread.v2')/messages('1612')", "inbound"),
        ("teams('t')/channels('19:c')/messages('1')", "inbound"),
        ("teams('t')/channels('19:c')/messages('1')/replies('2')", "inbound"),
        ("Users/u-1/Events/E1", SyncRoute("calendar", "u-1")),
        ("Users/u-1/Contacts/C1", SyncRoute("contacts", "u-1")),
        ("Users/u-1/contactFolders('AAMkF=')/Contacts/C1", SyncRoute("contacts", "u-1", "AAMkF=")),
        ("drives/b!x/root", SyncRoute("drive", "b!x")),
        ("communications/presences/u-1", None),
        (None, None),
    ],
)  # fmt: skip
def test_route_change(resource: str | None, expected: object) -> None:
    assert route_change(resource) == (InboundRoute(str(resource)) if expected == "inbound" else expected)


def test_resync_route_for_subscription_resources() -> None:
    assert resync_route("users/u-1/messages") == SyncRoute("mail", "u-1", "inbox")
    assert resync_route("users/u-1/mailFolders('Archive')/messages") == SyncRoute("mail", "u-1", "Archive")
    assert resync_route("teams/t-1/channels/19:c/messages") == SyncRoute("channel_messages", "t-1", channel_id="19:c")
    assert resync_route("chats/19:x/messages") is None  # chat messages have no delta query


def test_lifetimes_follow_the_documented_maximums() -> None:
    assert max_expiration_minutes("users/u/messages", has_lifecycle_url=False) == 10_080
    assert max_expiration_minutes("users/u/messages", include_resource_data=True, has_lifecycle_url=True) == 1_440
    assert max_expiration_minutes("drives/d/root", has_lifecycle_url=False) == 42_300
    assert max_expiration_minutes("chats/19:x/messages", has_lifecycle_url=True) == 4_320
    assert max_expiration_minutes("chats/19:x/messages", has_lifecycle_url=False) == 60
    assert max_expiration_minutes("communications/presences/u", has_lifecycle_url=True) == 60


def _encrypted(key_dir: Path, content: dict[str, object]) -> dict[str, object]:
    key = key_store(key_dir).get(CERT_ID)
    assert key is not None
    return encrypt_content(content, key.certificate_base64(), CERT_ID)


def test_rich_content_round_trip(key_dir: Path) -> None:
    content = {"id": "1612", "body": {"content": "hello"}}
    assert decrypt_content(_encrypted(key_dir, content), key_store(key_dir)) == content


def test_signature_is_checked_before_decrypting(key_dir: Path) -> None:
    enc = _encrypted(key_dir, {"id": "x"})
    # Data that could not even be decrypted (not a whole AES block): only a signature-first check
    # reports it as a signature failure.
    enc["data"] = base64.b64encode(base64.b64decode(str(enc["data"])) + b"\x00").decode()
    with pytest.raises(DecryptError) as info:
        decrypt_content(enc, key_store(key_dir))
    assert info.value.reason == c.DROPPED_DATA_SIGNATURE


def test_tampered_signature_and_unknown_certificate_are_refused(key_dir: Path) -> None:
    enc = _encrypted(key_dir, {"id": "x"})
    sig = base64.b64decode(str(enc["dataSignature"]))
    with pytest.raises(DecryptError) as info:
        decrypt_content(
            {**enc, "dataSignature": base64.b64encode(bytes([sig[0] ^ 1]) + sig[1:]).decode()}, key_store(key_dir)
        )
    assert info.value.reason == c.DROPPED_DATA_SIGNATURE
    with pytest.raises(DecryptError) as info:
        decrypt_content({**enc, "encryptionCertificateId": "other"}, key_store(key_dir))
    assert info.value.reason == c.DROPPED_DECRYPT


@pytest.mark.parametrize(
    "resource",
    ["Users/u-1/Messages/AAMk=", "chats('19:a@thread.v2')/messages('1')", "teams('t')/channels('19:c')/messages('1')"],
)
def test_every_inbound_route_is_a_valid_inbound_payload(resource: str) -> None:
    from graphworks_core.payloads import Inbound

    route = route_change(resource)
    assert isinstance(route, InboundRoute)
    assert Inbound(resource=route.resource).resource == resource
