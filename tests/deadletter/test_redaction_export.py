"""Secrets never reach the dead-letter store, and exports round-trip through JSONL."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime

import pytest

from graphworks_core.envelope import AttemptRecord
from graphworks_core.errors import ErrorClass
from graphworks_core.redact import REDACTED, redact, redact_text
from worker.deadletter.export import export_jsonl, read_jsonl
from worker.deadletter.models import DeadLetterEntry, DeadLetterFilter
from worker.deadletter.store import DeadLetterStore

MakeEntry = Callable[..., DeadLetterEntry]
SECRETS = ("abc.def", "s3cr3t", "shh", "xyz-token", "hmac-sig", "cs-value")


async def test_store_redacts_secrets_but_keeps_ordinary_fields(
    store: DeadLetterStore, make_entry: MakeEntry, t0: datetime
) -> None:
    payload = {
        "headers": {"Authorization": "Bearer xyz-token", "Content-Type": "application/json"},
        "client_secret": "s3cr3t",
        "clientState": "cs-value",
        "items": [{"X-Signature": "hmac-sig", "subject": "hello"}],
        "idempotency_key": "idem-1",
    }
    attempt = AttemptRecord(at=t0, error_class=ErrorClass.AUTH, message="POST /token client_secret=shh&x=1")
    entry = make_entry("a", payload=payload, message="401 for Bearer abc.def", attempts=[attempt])
    await store.put(entry)

    stored = await store.get("a")
    assert stored is not None
    assert isinstance(stored.payload, dict)
    assert stored.payload["headers"] == {"Authorization": REDACTED, "Content-Type": "application/json"}
    assert stored.payload["client_secret"] == REDACTED
    assert stored.payload["clientState"] == REDACTED
    assert stored.payload["items"] == [{"X-Signature": REDACTED, "subject": "hello"}]
    assert stored.payload["idempotency_key"] == "idem-1"
    assert stored.message == f"401 for Bearer {REDACTED}"
    assert stored.attempts[0].message == f"POST /token client_secret={REDACTED}&x=1"
    stored_json = stored.model_dump_json()
    assert not [s for s in SECRETS if s in stored_json]
    # The caller's entry is left alone: redaction works on a copy.
    assert entry.payload == payload and payload["client_secret"] == "s3cr3t"


async def test_store_redacts_a_raw_text_payload(store: DeadLetterStore, make_entry: MakeEntry) -> None:
    await store.put(make_entry("raw", payload='{"access_token": "s3cr3t", "x": 1', error_class=ErrorClass.UNDECODABLE))
    stored = await store.get("raw")
    assert stored is not None and stored.payload == f'{{"access_token": "{REDACTED}", "x": 1'


@pytest.mark.parametrize(
    "key", ["Authorization", "access_token", "refreshToken", "client-secret", "PASSWORD", "client_state",
            "x-api-key", "apiKey", "Set-Cookie", "signature"],
)  # fmt: skip
def test_redact_masks_secret_keys(key: str) -> None:
    assert redact({key: "value", "keep": 1}) == {key: REDACTED, "keep": 1}


@pytest.mark.parametrize("key", ["idempotency_key", "key", "subject", "client_request_id", "monkey"])
def test_redact_keeps_ordinary_keys(key: str) -> None:
    assert redact({key: {"nested": ["value", 1, None]}}) == {key: {"nested": ["value", 1, None]}}


def test_redact_text_masks_bearer_and_query_pairs() -> None:
    text = "Authorization: Bearer eyJ0eXAi.eyJhdWQi.sig== then grant&access_token=tok123&scope=x"
    assert redact_text(text) == f"Authorization: Bearer {REDACTED} then grant&access_token={REDACTED}&scope=x"
    assert redact_text("nothing secret here") == "nothing secret here"


async def test_export_and_read_round_trip(store: DeadLetterStore, make_entry: MakeEntry) -> None:
    entries = [make_entry(f"e{i}", minutes=i, type="teams.post" if i == 1 else "mail.send") for i in range(3)]
    for entry in entries:
        await store.put(entry)
    out = io.StringIO()
    assert await export_jsonl(store, out) == 3
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert read_jsonl(lines) == list(reversed(entries))  # newest first

    only_mail = io.StringIO()
    assert await export_jsonl(store, only_mail, DeadLetterFilter(type="mail.send")) == 2
    assert [e.id for e in read_jsonl(only_mail.getvalue().splitlines())] == ["e2", "e0"]


def test_read_jsonl_names_the_bad_line(make_entry: MakeEntry) -> None:
    good = make_entry("a").model_dump_json()
    with pytest.raises(ValueError, match=r"^line 3: "):
        read_jsonl([good, "", '{"id": "half an entry"}', good])
    assert len(read_jsonl([good, "  ", good])) == 2
