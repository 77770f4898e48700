"""The dead-letter store contract, run against every backend (the `store` fixture)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from graphworks_core.envelope import AttemptRecord
from graphworks_core.errors import ErrorClass
from worker.deadletter.models import DeadLetterEntry, DeadLetterFilter
from worker.deadletter.store import DeadLetterStore

MakeEntry = Callable[..., DeadLetterEntry]


async def ids_of(store: DeadLetterStore, flt: DeadLetterFilter | None = None) -> list[str]:
    return [entry.id async for entry in store.scan(flt)]


async def test_put_get_round_trips_every_field(store: DeadLetterStore, make_entry: MakeEntry, t0: datetime) -> None:
    attempts = [
        AttemptRecord(at=t0, error_class=ErrorClass.THROTTLED, status=429, delay_s=2.5,
                          graph_code="TooManyRequests", message="slow down", request_id="r-1"),
        AttemptRecord(at=t0 + timedelta(seconds=3), error_class=ErrorClass.UNAVAILABLE, status=503),
    ]  # fmt: skip
    entry = make_entry(
        "job-1", queue="mail", payload={"to": ["x@example.com"], "n": 1.5, "nested": {"ok": True}},
        priority=8, idempotency_key="idem-1", error_class=ErrorClass.UNAVAILABLE, reason="exhausted",
        status=503, graph_code="serviceNotAvailable", message="try later", request_id="req-1",
        client_request_id="creq-1", attempts=attempts, created_at=t0 - timedelta(hours=1),
        reviewed=True, note="looked at it", redrive_count=2,
    )  # fmt: skip
    await store.put(entry)
    assert await store.get("job-1") == entry
    assert await store.get("missing") is None


async def test_put_stores_a_raw_text_payload(store: DeadLetterStore, make_entry: MakeEntry) -> None:
    entry = make_entry("raw", payload="{not json", error_class=ErrorClass.UNDECODABLE)
    await store.put(entry)
    assert await store.get("raw") == entry


async def test_reput_same_id_overwrites_entry_and_index(
    store: DeadLetterStore, make_entry: MakeEntry, t0: datetime
) -> None:
    await store.put(make_entry("a", minutes=0))
    await store.put(make_entry("b", minutes=5))
    await store.put(make_entry("a", minutes=10, type="teams.post"))
    assert await store.count() == 2
    stored = await store.get("a")
    assert stored is not None and stored.type == "teams.post"
    # The index moved too: "a" is now the newest and only found by its new time.
    assert await ids_of(store) == ["a", "b"]
    assert await ids_of(store, DeadLetterFilter(until=t0 + timedelta(minutes=1))) == []


async def test_page_is_newest_first_with_offsets(store: DeadLetterStore, make_entry: MakeEntry) -> None:
    for minutes in (3, 0, 4, 1, 2):
        await store.put(make_entry(f"e{minutes}", minutes=minutes))
    first = await store.page(limit=2)
    assert ([e.id for e in first.entries], first.total, first.next_offset) == (["e4", "e3"], 5, 2)
    second = await store.page(limit=2, offset=2)
    assert ([e.id for e in second.entries], second.total, second.next_offset) == (["e2", "e1"], 5, 4)
    last = await store.page(limit=2, offset=4)
    assert ([e.id for e in last.entries], last.total, last.next_offset) == (["e0"], 5, None)
    beyond = await store.page(limit=2, offset=9)
    assert (beyond.entries, beyond.total, beyond.next_offset) == ([], 5, None)
    with pytest.raises(ValueError):
        await store.page(limit=0)


async def test_filtered_pages_count_only_matches(store: DeadLetterStore, make_entry: MakeEntry) -> None:
    for i in range(7):
        await store.put(make_entry(f"e{i}", minutes=i, type="teams.post" if i % 2 else "mail.send"))
    flt = DeadLetterFilter(type="mail.send")  # e0, e2, e4, e6
    first = await store.page(flt, limit=3)
    assert ([e.id for e in first.entries], first.total, first.next_offset) == (["e6", "e4", "e2"], 4, 3)
    second = await store.page(flt, limit=3, offset=3)
    assert ([e.id for e in second.entries], second.total, second.next_offset) == (["e0"], 4, None)


async def test_scan_crosses_batches_with_tied_times(
    store: DeadLetterStore, make_entry: MakeEntry, t0: datetime
) -> None:
    # 450 entries, 250 of them failing at the same instant: more than one Redis batch, with
    # a run of equal scores that straddles the batch size.
    for i in range(450):
        await store.put(make_entry(f"e{i:03d}", minutes=0 if i < 250 else i))
    newer = [f"e{i:03d}" for i in range(449, 249, -1)]
    tied = sorted((f"e{i:03d}" for i in range(250)), reverse=True)
    assert await ids_of(store) == newer + tied
    assert await ids_of(store, DeadLetterFilter(type="mail.send")) == newer + tied
    page = await store.page(DeadLetterFilter(since=t0), limit=10, offset=195)
    assert [e.id for e in page.entries] == (newer + tied)[195:205]
    assert (page.total, page.next_offset) == (450, 205)


FIXTURE_ROWS = [
    # id, minutes, type, error_class, reviewed
    ("m0", 0, "mail.send", ErrorClass.AUTH, False),
    ("m1", 10, "mail.send", ErrorClass.THROTTLED, True),
    ("t2", 20, "teams.post", ErrorClass.AUTH, True),
    ("t3", 30, "teams.post", ErrorClass.THROTTLED, False),
    ("m4", 40, "mail.send", ErrorClass.THROTTLED, False),
]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"type": "teams.post"}, ["t3", "t2"]),
        ({"error_class": ErrorClass.AUTH}, ["t2", "m0"]),
        ({"reviewed": True}, ["t2", "m1"]),
        ({"reviewed": False}, ["m4", "t3", "m0"]),
        ({"since": 20}, ["m4", "t3", "t2"]),  # since is inclusive
        ({"until": 20}, ["m1", "m0"]),  # until is exclusive
        ({"since": 10, "until": 40}, ["t3", "t2", "m1"]),
        ({"type": "mail.send", "error_class": ErrorClass.THROTTLED, "reviewed": False}, ["m4"]),
        ({"type": "mail.send", "since": 5, "reviewed": True}, ["m1"]),
        ({"type": "teams.post", "error_class": ErrorClass.UNKNOWN}, []),
    ],
)
async def test_filters(
    store: DeadLetterStore, make_entry: MakeEntry, t0: datetime, fields: dict[str, Any], expected: list[str]
) -> None:
    for entry_id, minutes, job_type, error_class, reviewed in FIXTURE_ROWS:
        await store.put(make_entry(entry_id, minutes, type=job_type, error_class=error_class, reviewed=reviewed))
    # since/until are given in minutes after t0
    times = {k: t0 + timedelta(minutes=v) for k, v in fields.items() if k in ("since", "until")}
    flt = DeadLetterFilter(**{**fields, **times})
    page = await store.page(flt)
    assert [e.id for e in page.entries] == expected
    assert page.total == len(expected)
    assert await ids_of(store, flt) == expected


async def test_review_sets_flag_and_note(store: DeadLetterStore, make_entry: MakeEntry) -> None:
    await store.put(make_entry("a"))
    await store.put(make_entry("b", minutes=1))
    updated = await store.review("a", "token expired, rotated")
    assert updated is not None and (updated.reviewed, updated.note) == (True, "token expired, rotated")
    stored = await store.get("a")
    assert stored is not None and (stored.reviewed, stored.note) == (True, "token expired, rotated")
    assert await ids_of(store, DeadLetterFilter(reviewed=True)) == ["a"]
    # Un-reviewing without a note keeps the note an operator wrote earlier.
    await store.review("a", None, reviewed=False)
    stored = await store.get("a")
    assert stored is not None and (stored.reviewed, stored.note) == (False, "token expired, rotated")
    assert await store.review("missing", "x") is None
    assert await store.count() == 2


async def test_remove_returns_the_entry_once(store: DeadLetterStore, make_entry: MakeEntry) -> None:
    entry = make_entry("a")
    await store.put(entry)
    await store.put(make_entry("b", minutes=1))
    assert await store.remove("a") == entry
    assert await store.remove("a") is None
    assert await store.get("a") is None
    assert (await store.count(), await ids_of(store)) == (1, ["b"])


async def test_concurrent_removes_hand_out_the_entry_once(store: DeadLetterStore, make_entry: MakeEntry) -> None:
    await store.put(make_entry("a"))
    results = await asyncio.gather(*(store.remove("a") for _ in range(5)))
    assert sum(r is not None for r in results) == 1


async def test_purge_by_filter_and_by_age(store: DeadLetterStore, make_entry: MakeEntry, t0: datetime) -> None:
    for entry_id, minutes, job_type, error_class, reviewed in FIXTURE_ROWS:
        await store.put(make_entry(entry_id, minutes, type=job_type, error_class=error_class, reviewed=reviewed))
    assert await store.purge(DeadLetterFilter(type="teams.post")) == 2
    assert await ids_of(store) == ["m4", "m1", "m0"]
    assert await store.purge(DeadLetterFilter(until=t0 + timedelta(minutes=15))) == 2  # older than 15 min
    assert await ids_of(store) == ["m4"]
    assert await store.purge(DeadLetterFilter(type="nothing")) == 0
    assert await store.purge() == 1
    assert await store.count() == 0


async def test_purge_many_crosses_batches(store: DeadLetterStore, make_entry: MakeEntry) -> None:
    for i in range(500):
        await store.put(make_entry(f"e{i:03d}", minutes=i, reviewed=i % 5 == 0))
    assert await store.purge(DeadLetterFilter(reviewed=False)) == 400
    assert await store.count() == 100
    assert await ids_of(store) == [f"e{i:03d}" for i in range(495, -1, -5)]


async def test_scan_survives_removing_while_iterating(store: DeadLetterStore, make_entry: MakeEntry) -> None:
    # Redrive-many removes each entry as the scan yields it; no entry may be skipped.
    for i in range(450):
        await store.put(make_entry(f"e{i:03d}", minutes=i))
    seen = [entry.id async for entry in store.scan() if await store.remove(entry.id)]
    assert seen == [f"e{i:03d}" for i in range(449, -1, -1)]
    assert await store.count() == 0
