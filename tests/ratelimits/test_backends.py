"""The limiter on every backend, time moved by a fake clock: pacing, several keys at once, bookings,
leases that expire, byte budgets, 429 cooldowns and the counters."""

from __future__ import annotations

import dataclasses
import random
from contextlib import AsyncExitStack

import pytest

from graphworks_core import keys
from graphworks_core.clock import FakeClock
from ratelimits import booking
from ratelimits.backend import Backend
from ratelimits.base import LimitDeferred, Use
from ratelimits.limiter import GraphLimiter
from ratelimits.memory import MemoryBackend
from ratelimits.redis_backend import RedisBackend
from tests.ratelimits.conftest import BASE, T0, MakeLimiter

CHAT = BASE + "/chats/{}/messages"
MAIL = BASE + "/users/{}/sendMail"


async def go_at(limiter: GraphLimiter, clock: FakeClock, method: str, url: str, uses: list[Use] | None = None) -> float:
    """Seconds after T0 at which the request was let through."""
    async with limiter.permit(method, url, uses):
        return round(clock.now() - T0, 6)


async def test_rate_paces_evenly_with_no_burst(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    limiter = make_limiter({"teams.chat": {"rate": 2}}, max_wait_s=100)
    times = [await go_at(limiter, clock, "POST", CHAT.format("19:a")) for _ in range(7)]
    assert times == [0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    # never more than 2 in any 1 s window (half-open, as Graph's would be)
    assert all(sum(1 for t in times if s <= t < s + 1) <= 2 for s in times)


async def test_one_request_takes_every_key_tenant_and_chat(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    limiter = make_limiter({"teams.chat_post": {"rate": 4}}, max_wait_s=100)
    order = ["19:a", "19:b", "19:a", "19:b", "19:c"]
    times = [await go_at(limiter, clock, "POST", CHAT.format(c)) for c in order]
    # tenant: one per 0.25 s; each chat: one per 1 s
    assert times == [0, 0.25, 1.0, 1.25, 1.5]


async def test_headroom_paces_below_the_limit(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    limiter = make_limiter({"teams.chat": {"rate": 1}}, max_wait_s=100, headroom=0.8)
    times = [await go_at(limiter, clock, "POST", CHAT.format("19:a")) for _ in range(3)]
    assert times == [0, 1.25, 2.5]


async def test_long_wait_defers_with_a_booked_slot_that_is_used_not_charged_again(
    make_limiter: MakeLimiter, clock: FakeClock
) -> None:
    limiter = make_limiter(max_wait_s=0.5)
    url = CHAT.format("19:a")  # 1 rps per chat
    assert await go_at(limiter, clock, "POST", url) == 0
    with pytest.raises(LimitDeferred) as second:
        await go_at(limiter, clock, "POST", url)
    with pytest.raises(LimitDeferred) as third:
        await go_at(limiter, clock, "POST", url)
    assert second.value.booking is not None and third.value.booking is not None
    assert (second.value.booking.at, third.value.booking.at) == (T0 + 1, T0 + 2)
    # due a little early (half of max_wait here, less than DEFER_LEAD_S), then sleeps to its slot
    assert second.value.until == pytest.approx(T0 + 0.75, abs=1e-6)
    assert "teams.chat:19:a" in second.value.keys

    clock.set(second.value.until)
    with booking.holding(second.value.booking):
        assert await go_at(limiter, clock, "POST", url) == 1.0
    # The booked run was not charged again: the next fresh request books after the third's slot.
    with pytest.raises(LimitDeferred) as fourth:
        await go_at(limiter, clock, "POST", url)
    assert fourth.value.booking is not None and fourth.value.booking.at == T0 + 3


async def test_a_deferral_under_a_long_max_wait_is_due_defer_lead_before_its_slot(
    make_limiter: MakeLimiter, clock: FakeClock
) -> None:
    """With max_wait_s / 2 above DEFER_LEAD_S, the job is due DEFER_LEAD_S (1 s) before its slot."""
    limiter = make_limiter({"teams.chat": {"rate": 1, "per_s": 4}}, max_wait_s=3)
    url = CHAT.format("19:a")  # one per 4 s: the second waits 4 s, more than max_wait_s
    assert await go_at(limiter, clock, "POST", url) == 0
    with pytest.raises(LimitDeferred) as second:
        await go_at(limiter, clock, "POST", url)
    assert second.value.booking is not None and second.value.booking.at == T0 + 4
    assert second.value.until == pytest.approx(T0 + 3, abs=1e-6)


async def test_a_booking_that_comes_back_late_is_paced_afresh(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    limiter = make_limiter(max_wait_s=0.5)
    url = CHAT.format("19:a")
    await go_at(limiter, clock, "POST", url)
    with pytest.raises(LimitDeferred) as late:
        await go_at(limiter, clock, "POST", url)
    clock.set(T0 + 1.7)  # its slot (T0+1) has passed: sending now could bunch with later slots
    with booking.holding(late.value.booking):
        assert await go_at(limiter, clock, "POST", url) == 2.0  # the next free slot, not now


async def test_lease_limits_concurrency_and_a_release_frees_it(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    limiter = make_limiter({"outlook": {"concurrency": 2}}, max_wait_s=10)
    async with AsyncExitStack() as held:
        await held.enter_async_context(limiter.permit("POST", MAIL.format("a@x.com")))
        await held.enter_async_context(limiter.permit("POST", MAIL.format("A@x.com")))  # same mailbox
        decision = await limiter.backend.acquire(
            limiter.plan("POST", MAIL.format("a@x.com")), clock.now(), 10, None, "l3"
        )
        assert decision.kind == "retry"
        other = await go_at(limiter, clock, "POST", MAIL.format("b@x.com"))  # another mailbox is not held up
        assert other == pytest.approx(0.06, abs=1e-3)  # (global's own interval: 10 s / 130,000)
    assert await go_at(limiter, clock, "POST", MAIL.format("a@x.com")) == pytest.approx(0.12)  # 10,000 per 600 s


async def test_a_lease_never_released_expires_after_its_ttl(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    """What a SIGKILLed holder leaves behind: its lease blocks the key for at most lease_ttl_s."""
    limiter = make_limiter({"outlook": {"concurrency": 1, "rate": 1000, "per_s": 1}}, max_wait_s=10, lease_ttl_s=5)
    plan = limiter.plan("POST", MAIL.format("a@x.com"))
    assert (await limiter.backend.acquire(plan, T0, 10, None, "dead-worker")).kind == "go"  # never released
    clock.set(T0 + 4.99)
    assert (await limiter.backend.acquire(plan, clock.now(), 10, None, "l2")).kind == "retry"
    clock.set(T0 + 1)
    assert await go_at(limiter, clock, "POST", MAIL.format("a@x.com")) == pytest.approx(5.0, abs=1e-6)


async def test_upload_bytes_spend_the_byte_budget(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    limiter = make_limiter({"outlook": {"upload_bytes": 1000, "upload_per_s": 10}}, max_wait_s=100)
    chunk = [Use("outlook", "a@x.com", upload_bytes=500)]
    url = "https://outlook.office.com/api/v2.0/Users('a')/AttachmentSessions('s')?authtoken=x"
    times = [await go_at(limiter, clock, "PUT", url, chunk) for _ in range(3)]
    assert times == [0, 5.0, 10.0]
    # a routed POST is charged its body size
    async with limiter.permit("POST", MAIL.format("b@x.com"), body_bytes=1000):
        pass
    async with limiter.permit("POST", MAIL.format("b@x.com"), body_bytes=1):
        assert clock.now() - T0 == pytest.approx(20.0, abs=1e-3)


async def test_429_cools_only_that_scope_for_every_caller_and_lifts_exactly_on_time(
    make_limiter: MakeLimiter, clock: FakeClock
) -> None:
    limiter = make_limiter(max_wait_s=100)
    async with limiter.permit("POST", MAIL.format("a@x.com")) as permit:
        await permit.throttled(10.0)
    plan = limiter.plan("POST", MAIL.format("a@x.com"))
    clock.set(T0 + 9.999)
    assert (await limiter.backend.acquire(plan, clock.now(), 100, None, "x")).kind == "retry"
    clock.set(T0 + 1)
    assert await go_at(limiter, clock, "POST", MAIL.format("b@x.com")) == 1  # other mailbox flows
    assert await go_at(limiter, clock, "POST", MAIL.format("a@x.com")) == 10.0  # not a moment later
    # beyond max_wait, a cooling key defers the job to the cooldown's end (nothing booked)
    short = make_limiter(max_wait_s=1)
    async with short.permit("POST", CHAT.format("19:a")) as permit:
        await permit.throttled(None)  # no Retry-After: cooldown_default_s (5)
    with pytest.raises(LimitDeferred) as deferred:
        await go_at(short, clock, "POST", CHAT.format("19:a"))
    assert deferred.value.until == pytest.approx(clock.now() + 5, abs=1e-6) and deferred.value.booking is None
    # the tenant-wide key does not cool: other chats keep going
    assert await go_at(short, clock, "POST", CHAT.format("19:b")) == pytest.approx(clock.now() - T0)


async def test_counters_per_key(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    limiter = make_limiter(max_wait_s=0.5)
    url = CHAT.format("19:a")
    await go_at(limiter, clock, "POST", url)
    with pytest.raises(LimitDeferred):
        await go_at(limiter, clock, "POST", url)
    async with limiter.permit("POST", CHAT.format("19:b")) as permit:
        await permit.throttled(2)
    clock.advance(0.1)
    stats = {s.key: s for s in await limiter.snapshot()}
    chat_a, chat_b, tenant = stats["teams.chat:19:a"], stats["teams.chat:19:b"], stats["teams.chat_post:contoso"]
    assert (chat_a.sent, chat_a.deferred, chat_a.throttled) == (1, 1, 0)
    assert (chat_b.sent, chat_b.throttled, chat_b.cooldowns) == (1, 1, 1)
    assert chat_b.cooling_until == pytest.approx(T0 + 0.05 + 2, abs=0.01)
    assert (tenant.sent, tenant.throttled, tenant.cooldowns, tenant.cooling_until) == (2, 1, 0, None)
    assert stats["global:contoso"].sent == 2
    clock.advance(10)
    assert {s.key: s for s in await limiter.snapshot()}["teams.chat_post:contoso"].rate_per_s == pytest.approx(0.2)


async def test_a_wait_for_one_chat_leaves_the_tenants_earlier_slots_to_other_chats(
    make_limiter: MakeLimiter, clock: FakeClock
) -> None:
    limiter = make_limiter({"teams.chat_post": {"rate": 4}}, max_wait_s=100)
    order = ("19:a", "19:a", "19:b", "19:c", "19:a", "19:d")
    assert [await slot_at(limiter, c, 100) for c in order] == [0, 1.0, 0.25, 0.5, 2.0, 0.75]


async def slot_at(limiter: GraphLimiter, chat: str, max_wait_s: float) -> float:
    """Seconds after T0 of the slot a post to `chat` gets, all asked at T0 (waits within max_wait_s)."""
    decision = await limiter.backend.acquire(limiter.plan("POST", CHAT.format(chat)), T0, max_wait_s, None, chat)
    assert decision.kind == "go"
    return round(decision.at - T0, 6)


async def _runs(backend: Backend, key: str) -> int:
    if isinstance(backend, RedisBackend):
        return int(await backend.redis.zcard(keys.limit_state(key)))
    assert isinstance(backend, MemoryBackend)
    return len(backend.state.timelines.get(key, []))


async def test_a_key_booked_solid_far_ahead_is_one_run_and_gaps_stay_usable(
    make_limiter: MakeLimiter, clock: FakeClock
) -> None:
    """Booked intervals merge into runs, so an acquire costs the same at 400 bookings ahead as at 1."""
    limiter = make_limiter({"teams.chat_post": {"rate": 4}}, max_wait_s=1000)

    async def slot(chat: str) -> float:
        return await slot_at(limiter, chat, 1000)

    times = [await slot(f"19:c{i % 100}") for i in range(400)]
    assert times == [i * 0.25 for i in range(400)]
    assert await _runs(limiter.backend, "teams.chat_post:contoso") == 1
    assert await _runs(limiter.backend, "teams.chat:19:c0") == 4  # 1 s apart: a usable gap between each
    # A chat booked at 99.0 s leaves the tenant's slot after the run; one more for it waits a second
    assert await slot("19:c96") == 100.0
    assert await slot("19:new") == 100.25
    assert await _runs(limiter.backend, "teams.chat_post:contoso") == 1


async def test_merged_runs_give_every_slot_unmerged_intervals_would(make_limiter: MakeLimiter) -> None:
    """Bookings in a scrambled chat order (as 4 workers take them) at Graph's own 20 rps with
    headroom: merging never loses a gap, not even one exactly a step long after float error."""
    limiter = make_limiter(headroom=0.97, max_wait_s=1000)
    rng = random.Random(1)
    order = [f"19:c{i % 50}" for i in range(600)]
    for k in range(0, len(order), 200):
        window = order[k : k + 200]
        rng.shuffle(window)
        order[k : k + 200] = window
    unmerged = MemoryBackend()
    got, want = [], []
    for chat in order:
        plan = limiter.plan("POST", CHAT.format(chat))
        got.append((await limiter.backend.acquire(plan, T0, 1000, None, chat)).at)
        plain = dataclasses.replace(plan, meters=tuple(dataclasses.replace(m, merge_gap_s=0.0) for m in plan.meters))
        want.append((await unmerged.acquire(plain, T0, 1000, None, chat)).at)
    assert got == pytest.approx(want, abs=1e-9)
    assert (
        await _runs(limiter.backend, "teams.chat_post:contoso")
        < len(unmerged.state.timelines["teams.chat_post:contoso"]) / 4
    )
