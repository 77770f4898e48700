"""The job envelope and arq's JSON codec: round trips, bounds, and poison bytes that never crash a worker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphworks_core.envelope import PRIORITY_DEFAULT, AttemptRecord, Envelope, UndecodableJob, decode, encode
from graphworks_core.errors import ErrorClass
from worker import arq_adapter

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def attempt(i: int, error_class: ErrorClass = ErrorClass.UNAVAILABLE) -> AttemptRecord:
    return AttemptRecord(at=T0 + timedelta(seconds=i), error_class=error_class, status=503, delay_s=float(i))


def mail_envelope(**fields: object) -> Envelope:
    return Envelope(type="mail", payload={"mailbox": "ops@contoso.com", "to": ["a@contoso.com"]}, **fields)  # type: ignore[arg-type]


# --- Envelope ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw_type", [str, bytes])
def test_round_trip(raw_type: type) -> None:
    env = mail_envelope(
        priority=9,
        idempotency_key="order-42",
        attempt=2,
        history=[attempt(1), attempt(2, ErrorClass.THROTTLED)],
        redrive_count=1,
        refresh_auth=True,
    )
    text = encode(env)
    assert decode(text if raw_type is str else text.encode()) == env


def test_defaults() -> None:
    env = mail_envelope()
    assert (env.priority, env.queue, env.attempt, env.history, env.redrive_count) == (
        PRIORITY_DEFAULT,
        "default",
        0,
        [],
        0,
    )
    assert env.id != mail_envelope().id
    assert env.created_at.tzinfo is not None


@pytest.mark.parametrize("priority", [1, 10])
def test_priority_bounds_accepted(priority: int) -> None:
    assert mail_envelope(priority=priority).priority == priority


@pytest.mark.parametrize("priority", [0, 11, -5])
def test_priority_out_of_bounds_refused(priority: int) -> None:
    with pytest.raises(pydantic.ValidationError):
        mail_envelope(priority=priority)


def test_envelope_is_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        mail_envelope().priority = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "raw",
    [
        "not json at all",
        "[1, 2]",
        '{"type": "mail"}',
        '{"type": "mail", "payload": {}, "priority": 99}',
        "",
    ],
)
def test_garbage_is_undecodable_and_kept(raw: str) -> None:
    with pytest.raises(UndecodableJob) as info:
        decode(raw)
    assert info.value.raw == raw
    assert info.value.reason.startswith("not a job envelope")


def test_undecodable_bytes_keep_their_text() -> None:
    with pytest.raises(UndecodableJob) as info:
        decode(b"\xffnot utf-8")
    assert info.value.raw == "\ufffdnot utf-8"


def test_budget_history_is_empty_before_any_failure() -> None:
    assert mail_envelope().budget_history() == []


def test_budget_history_is_every_attempt_without_redrive() -> None:
    history = [attempt(1), attempt(2), attempt(3)]
    assert mail_envelope(attempt=3, history=history).budget_history() == history


def test_budget_history_after_redrive_counts_only_new_attempts() -> None:
    history = [attempt(1), attempt(2), attempt(3), attempt(4, ErrorClass.THROTTLED)]
    # Redriven after 3 failures (attempt reset to 0), then one new failure.
    assert mail_envelope(attempt=1, history=history, redrive_count=1).budget_history() == [history[3]]
    assert mail_envelope(attempt=0, history=history, redrive_count=1).budget_history() == []


# --- codec ------------------------------------------------------------------------------------


def assert_runner_call(job: dict[str, object], raw: str) -> None:
    assert job["f"] == arq_adapter.RUNNER_FUNCTION
    assert job["a"] == [raw]
    assert job["k"] == {}
    assert isinstance(job["et"], int)


@pytest.mark.parametrize(
    ("data", "raw"),
    [
        (b"\x80garbage", "\ufffdgarbage"),
        (b"[1,2]", "[1,2]"),
        (b'{"x": 1}', '{"x": 1}'),
        (b"", ""),
    ],
)
def test_poison_bytes_become_a_runner_call_with_the_raw_text(data: bytes, raw: str) -> None:
    assert_runner_call(arq_adapter.deserialize(data), raw)


def test_poison_reaches_the_runner_as_undecodable() -> None:
    job = arq_adapter.deserialize(b"\x80garbage")
    with pytest.raises(UndecodableJob) as info:
        decode(job["a"][0])
    assert info.value.raw == "\ufffdgarbage"


@given(st.binary(max_size=200))
def test_deserialize_never_raises(data: bytes) -> None:
    job = arq_adapter.deserialize(data)
    assert isinstance(job, dict)
    assert ("f" in job and "a" in job) or "s" in job


def test_deeply_nested_poison_becomes_a_runner_call() -> None:
    data = b"[" * 100_000
    assert_runner_call(arq_adapter.deserialize(data), data.decode())


def test_job_record_round_trip() -> None:
    env = mail_envelope(priority=2)
    job = arq_adapter.deserialize(arq_adapter.job_record(encode(env), 1_714_564_800_000))
    assert job == {"t": None, "f": arq_adapter.RUNNER_FUNCTION, "a": [encode(env)], "k": {}, "et": 1_714_564_800_000}
    assert decode(job["a"][0]) == env


def test_result_record_round_trip() -> None:
    result = {
        "t": 1,
        "f": arq_adapter.RUNNER_FUNCTION,
        "a": ["{}"],
        "k": {},
        "s": True,
        "r": "completed",
        "st": 1,
        "ft": 2,
    }
    assert arq_adapter.deserialize(arq_adapter.serialize(result)) == result


def test_serialize_is_compact_json_and_stringifies_the_rest() -> None:
    data = arq_adapter.serialize({"f": "x", "a": [T0]})
    assert data == b'{"f":"x","a":["2024-05-01 12:00:00+00:00"]}'
    assert json.loads(data)["a"] == [str(T0)]


# --- job ids ----------------------------------------------------------------------------------


def test_job_ids_sort_in_creation_order_within_a_millisecond_and_across_a_clock_step_back() -> None:
    from graphworks_core.envelope import JobIds

    now = [1_800_000_000_000]
    ids_of = JobIds(now_ms=lambda: now[0])
    made = [ids_of() for _ in range(5)]
    now[0] -= 5_000  # the wall clock steps back five seconds
    made += [ids_of() for _ in range(5)]
    now[0] += 10_000
    made.append(ids_of())
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in made)


def test_job_ids_carry_over_a_full_millisecond() -> None:
    from graphworks_core.envelope import JobIds

    ids_of = JobIds(now_ms=lambda: 1_800_000_000_000)
    made = [ids_of() for _ in range(70_000)]  # more than the 16-bit sequence holds
    assert made == sorted(made)
    assert len(set(made)) == len(made)
