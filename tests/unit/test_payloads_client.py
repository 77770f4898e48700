"""Payload models and the enqueue-side checks: a bad job is refused with its field or line named."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import click
import pytest

from graphworks.cli.dlq import parse_age
from graphworks.cli.enqueue import read_jobs
from graphworks_core.errors import EnqueueError, PayloadInvalid
from graphworks_core.payloads import TEAMS_MAX_BODY_BYTES, Mail, TeamsMessage
from worker.client import JobRequest, validate_payload

MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "Hi", "body": "Hello"}


def problems(job_type: str, payload: dict[str, Any]) -> list[str]:
    with pytest.raises(PayloadInvalid) as info:
        validate_payload(job_type, payload)
    assert info.value.job_type == job_type
    assert all(p in str(info.value) for p in info.value.problems)
    return info.value.problems


def test_valid_mail() -> None:
    mail = validate_payload("mail", {**MAIL, "to": [" a@contoso.com "]})
    assert isinstance(mail, Mail)
    assert mail.to == ["a@contoso.com"]


def test_a_model_instance_is_accepted() -> None:
    mail = Mail.model_validate(MAIL)
    assert validate_payload("mail", mail) == mail


def test_mail_without_to_names_to() -> None:
    found = problems("mail", {k: v for k, v in MAIL.items() if k != "to"})
    assert [p.split(":")[0] for p in found] == ["to"]


def test_mail_with_empty_to_names_to() -> None:
    assert [p.split(":")[0] for p in problems("mail", {**MAIL, "to": []})] == ["to"]


@pytest.mark.parametrize("address", ["not-an-address", "a@b@c", "two words@contoso.com", "@contoso.com"])
def test_bad_address_names_its_field(address: str) -> None:
    assert [p.split(":")[0] for p in problems("mail", {**MAIL, "cc": ["ok@contoso.com", address]})] == ["cc.1"]


def test_unknown_field_is_named() -> None:
    assert [p.split(":")[0] for p in problems("mail", {**MAIL, "attachment_bytes": "AAEC"})] == ["attachment_bytes"]


@pytest.mark.parametrize(
    "target",
    [{"chat_id": "19:chat"}, {"team_id": "team-1", "channel_id": "19:channel"}],
)
def test_teams_targets(target: dict[str, str]) -> None:
    message = validate_payload("teams_message", {**target, "content": "hello"})
    assert isinstance(message, TeamsMessage)


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ({"chat_id": "19:chat", "team_id": "team-1"}, "not both"),
        ({"chat_id": "19:chat", "team_id": "team-1", "channel_id": "19:channel"}, "not both"),
        ({"chat_id": "19:chat", "channel_id": "19:channel"}, "not both"),
        ({"team_id": "team-1"}, "required"),
        ({"channel_id": "19:channel"}, "required"),
        ({}, "required"),
        ({"chat_id": "  "}, "chat_id"),
    ],
)
def test_teams_target_errors(target: dict[str, str], words: str) -> None:
    assert any(words in p for p in problems("teams_message", {**target, "content": "hello"}))


def test_teams_content_at_the_limit_is_accepted() -> None:
    validate_payload("teams_message", {"chat_id": "19:chat", "content": "x" * TEAMS_MAX_BODY_BYTES})


def test_teams_content_over_the_limit_is_refused() -> None:
    found = problems("teams_message", {"chat_id": "19:chat", "content": "x" * (TEAMS_MAX_BODY_BYTES + 1)})
    assert any(str(TEAMS_MAX_BODY_BYTES) in p for p in found)


def test_teams_limit_counts_bytes_not_characters() -> None:
    content = "é" * (TEAMS_MAX_BODY_BYTES // 2 + 1)  # fewer characters than the limit, more bytes
    assert any(str(TEAMS_MAX_BODY_BYTES) in p for p in problems("teams_message", {"chat_id": "c", "content": content}))


def test_blank_teams_content_is_refused() -> None:
    assert [p.split(":")[0] for p in problems("teams_message", {"chat_id": "c", "content": "   "})] == ["content"]


def test_unknown_job_type_is_refused() -> None:
    with pytest.raises(EnqueueError) as info:
        validate_payload("fax", {"to": "+1"})
    assert not isinstance(info.value, PayloadInvalid)
    assert "'fax'" in str(info.value)
    assert "unknown job type" in str(info.value)


def test_every_payload_model_has_a_processor() -> None:
    # The client validates against the payload models alone (it must not load the processors), so
    # a model without a processor would be accepted at enqueue and dead-lettered by the worker.
    # The registry and the models are kept equal here instead.
    from graphworks_core.payloads import PAYLOAD_MODELS
    from processors.registry import JOB_TYPES

    assert set(JOB_TYPES) == set(PAYLOAD_MODELS)
    assert all(JOB_TYPES[name].model is PAYLOAD_MODELS[name] for name in JOB_TYPES)


# --- graphworks enqueue --file ----------------------------------------------------------------

GOOD_LINE = json.dumps({"type": "mail", "payload": MAIL, "priority": 8}) + "\n"
TEAMS_LINE = json.dumps({"type": "teams_message", "payload": {"chat_id": "19:chat", "content": "hi"}}) + "\n"


def test_read_jobs_parses_every_line_and_skips_blank_ones() -> None:
    jobs = read_jobs(io.StringIO(GOOD_LINE + "\n" + TEAMS_LINE))
    assert jobs == [
        JobRequest(type="mail", payload=MAIL, priority=8),
        JobRequest(type="teams_message", payload={"chat_id": "19:chat", "content": "hi"}),
    ]


@pytest.mark.parametrize(
    ("bad_line", "where"),
    [
        ("{not json", None),
        (json.dumps({"type": "mail"}), "payload"),
        (json.dumps({"type": "mail", "payload": MAIL, "priority": 11}), "priority"),
        (json.dumps({"type": "mail", "payload": MAIL, "colour": "red"}), "colour"),
        (json.dumps({"type": "mail", "payload": {**MAIL, "to": ["nobody"]}}), "invalid mail payload: to.0"),
        (json.dumps({"type": "fax", "payload": {}}), "unknown job type"),
    ],
)
def test_a_bad_line_is_named_by_number(bad_line: str, where: str | None) -> None:
    with pytest.raises(EnqueueError) as info:
        read_jobs(io.StringIO(GOOD_LINE + TEAMS_LINE + bad_line + "\n" + GOOD_LINE))
    message = str(info.value)
    assert message.startswith("line 3: ")
    assert "nothing was enqueued" in message
    if where:
        assert message.startswith(f"line 3: {where}")


def test_blank_lines_still_count_for_the_line_number() -> None:
    with pytest.raises(EnqueueError, match=r"^line 3: "):
        read_jobs(io.StringIO(GOOD_LINE + "\n" + "[]\n"))


# --- graphworks dlq --older-than --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "age"),
    [
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("1.5h", timedelta(minutes=90)),
        (" 2d ", timedelta(days=2)),
        (None, None),
    ],
)
def test_parse_age(value: str | None, age: timedelta | None) -> None:
    assert parse_age(value) == age


@pytest.mark.parametrize("value", ["7", "d", "7w", "-1d", "", "7 d", "seven days", "1e3s"])
def test_parse_age_refuses_bad_input(value: str) -> None:
    with pytest.raises(click.BadParameter) as info:
        parse_age(value)
    assert repr(value) in str(info.value)
