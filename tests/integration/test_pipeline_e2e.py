"""End to end on a real Redis and graphsim over HTTP: sends, throttling, storms, validation, auth."""

from __future__ import annotations

import pytest

from graphsim.faults import Fault
from graphworks_core.errors import ErrorClass
from tests.integration.conftest import Pipeline, eventually
from worker.arq_adapter import JOB_KEY_PREFIX as job_key_prefix

MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com", "b@contoso.com"], "subject": "Hi", "body": "Hello"}


async def test_teams_and_mail_sends_succeed(pipeline: Pipeline) -> None:
    await pipeline.client.send_teams_message(chat_id="19:chat-1", content="<b>hi</b>", content_type="html",
                                             importance="high")  # fmt: skip
    await pipeline.client.send_mail(**MAIL)
    await eventually(lambda: _equals(pipeline.completed(), 2), what="two completed jobs")

    by_path = {r.path: r for r in pipeline.graph_requests()}
    chat = by_path["/chats/19:chat-1/messages"]
    assert chat.body == {"body": {"contentType": "html", "content": "<b>hi</b>"}, "importance": "high"}
    assert chat.headers["authorization"] == "Bearer test-token"
    mail = by_path["/users/ops@contoso.com/sendMail"]
    assert mail.body["message"]["toRecipients"] == [
        {"emailAddress": {"address": "a@contoso.com"}},
        {"emailAddress": {"address": "b@contoso.com"}},
    ]
    assert mail.body["saveToSentItems"] is True
    assert mail.status == 202 and chat.status == 201
    assert await pipeline.dead_letters() == []


async def test_channel_message_goes_to_the_channel(pipeline: Pipeline) -> None:
    await pipeline.client.send_teams_message(team_id="team-1", channel_id="19:chan", content="hello", subject="S")
    await eventually(lambda: _equals(pipeline.completed(), 1), what="completion")
    (req,) = pipeline.graph_requests()
    assert req.path == "/teams/team-1/channels/19:chan/messages"
    assert req.body["subject"] == "S"


async def test_429_with_fractional_retry_after_is_retried_exactly_then_succeeds(pipeline: Pipeline) -> None:
    pipeline.sim.state.add_fault(Fault(method="POST", path="/users/*/sendMail", status=429, retry_after="2.5"))
    t0 = pipeline.clock.now()
    await pipeline.client.send_mail(**MAIL)

    await eventually(lambda: _nonempty(pipeline.scheduled()), what="the retry to be scheduled")
    (member, due), = await pipeline.scheduled()  # fmt: skip
    assert due == pytest.approx(t0 + 2.5, abs=0.001)
    # The retry's arq job key outlives its due time: a long schedule cannot die of arq's job expiry.
    assert await pipeline.redis.pttl(job_key_prefix + member.split(":", 1)[1]) >= 2500

    pipeline.clock.advance(2.49)
    # A promotion at this clock, ours, finished before the checks (the worker's own promoter runs
    # every 5 ms on the same clock, so the count ours returns proves nothing): the retry is
    # still scheduled, not in the queue, and was not sent.
    await pipeline.runner.queue.promote_due()
    assert [m for m, _ in await pipeline.scheduled()] == [member], "promoted before Retry-After passed"
    assert await pipeline.redis.zcard(pipeline.runner.queue.queue_key) == 0
    assert len(pipeline.graph_requests()) == 1
    pipeline.clock.set(due)
    await eventually(lambda: _equals(pipeline.completed(), 1), what="the retried send to complete")

    first, second = pipeline.graph_requests()
    assert (first.status, second.status) == (429, 202)
    snap = await pipeline.stats.snapshot()
    assert snap.by_class["throttled"]["retried"] == 1
    assert await pipeline.dead_letters() == []


async def test_503_storm_follows_the_unavailable_policy_then_dead_letters(pipeline: Pipeline) -> None:
    pipeline.sim.state.add_fault(Fault(method="POST", path="/chats/*/messages", status=503, times=None))
    await pipeline.client.send_teams_message(chat_id="19:storm", content="x")

    steps = [await pipeline.advance_to_next_retry() for _ in range(5)]
    assert steps == pytest.approx([1, 2, 4, 8, 16], abs=0.002)
    await eventually(lambda: _nonempty(pipeline.dead_letters()), what="the dead-letter entry")

    (entry,) = await pipeline.dead_letters()
    assert entry.error_class == ErrorClass.UNAVAILABLE and entry.status == 503
    assert entry.graph_code == "ServiceUnavailable"
    assert [a.error_class for a in entry.attempts] == [ErrorClass.UNAVAILABLE] * 6
    assert [a.delay_s for a in entry.attempts] == pytest.approx([1, 2, 4, 8, 16, None])
    assert len(pipeline.graph_requests()) == 6
    assert entry.request_id == pipeline.graph_requests()[-1].request_id


async def test_400_is_dead_lettered_at_once_with_graph_details(pipeline: Pipeline) -> None:
    fault = Fault(method="POST", path="/users/*/sendMail", status=400, graph_code="ErrorInvalidRecipients",
                  message="bad recipient")  # fmt: skip
    pipeline.sim.state.add_fault(fault)
    job_id = await pipeline.client.send_mail(**MAIL)
    await eventually(lambda: _nonempty(pipeline.dead_letters()), what="the dead-letter entry")

    (entry,) = await pipeline.dead_letters()
    (req,) = pipeline.graph_requests()
    assert entry.job_id == job_id and entry.error_class == ErrorClass.VALIDATION
    assert (entry.status, entry.graph_code, entry.request_id) == (400, "ErrorInvalidRecipients", req.request_id)
    assert entry.client_request_id == req.client_request_id
    assert len(entry.attempts) == 1 and entry.attempts[0].delay_s is None
    assert entry.payload["mailbox"] == "ops@contoso.com"


async def test_401_is_retried_exactly_once_with_a_fresh_token(pipeline: Pipeline) -> None:
    asked: list[bool] = []
    original = pipeline.runner.graph.tokens.token

    async def counting(*, sender: str | None = None, force_refresh: bool = False) -> str:
        asked.append(force_refresh)
        return await original(sender=sender, force_refresh=force_refresh)

    pipeline.runner.graph.tokens.token = counting  # type: ignore[method-assign]
    pipeline.sim.state.add_fault(Fault(method="POST", path="/users/*/sendMail", status=401, times=None))
    await pipeline.client.send_mail(**MAIL)
    await eventually(lambda: _nonempty(pipeline.dead_letters()), what="the dead-letter entry")

    (entry,) = await pipeline.dead_letters()
    assert entry.error_class == ErrorClass.AUTH
    assert [a.status for a in entry.attempts] == [401, 401]
    assert len(pipeline.graph_requests()) == 2
    assert asked == [False, True], "the retry must force a token refresh"


async def test_401_once_then_success_completes(pipeline: Pipeline) -> None:
    pipeline.sim.state.add_fault(Fault(method="POST", path="/chats/*/messages", status=401))
    await pipeline.client.send_teams_message(chat_id="19:c", content="x")
    await eventually(lambda: _equals(pipeline.completed(), 1), what="completion after one auth retry")
    assert [r.status for r in pipeline.graph_requests()] == [401, 201]


async def test_connection_reset_is_a_network_failure_and_retried(pipeline: Pipeline) -> None:
    pipeline.sim.state.add_fault(Fault(method="POST", path="/chats/*/messages", kind="reset"))
    await pipeline.client.send_teams_message(chat_id="19:c", content="x")
    assert await pipeline.advance_to_next_retry() == pytest.approx(1.0, abs=0.002)
    await eventually(lambda: _equals(pipeline.completed(), 1), what="completion after the reset")
    assert (await pipeline.stats.snapshot()).by_class["network"]["retried"] == 1


async def _equals(value: object, expected: int) -> bool:
    return await value == expected  # type: ignore[misc]


async def _nonempty(value: object) -> bool:
    return bool(await value)  # type: ignore[misc]


async def test_throttled_schedule_from_60s_outlives_arq_expiry_then_dead_letters(pipeline: Pipeline) -> None:
    pipeline.sim.state.add_fault(Fault(method="POST", path="/chats/*/messages", status=429, times=None))
    await pipeline.client.send_teams_message(chat_id="19:hot", content="x")
    steps = [await pipeline.advance_to_next_retry() for _ in range(5)]
    assert steps == pytest.approx([60, 120, 240, 480, 960], abs=0.002)
    await eventually(lambda: _nonempty(pipeline.dead_letters()), what="the dead-letter entry")
    (entry,) = await pipeline.dead_letters()
    assert entry.error_class == ErrorClass.THROTTLED and len(entry.attempts) == 6


async def test_each_retry_job_key_lives_past_its_due_time(pipeline: Pipeline) -> None:
    pipeline.sim.state.add_fault(Fault(method="POST", path="/chats/*/messages", status=429, times=None))
    await pipeline.client.send_teams_message(chat_id="19:hot", content="x")
    extra_ms = pipeline.settings.job_expiry_extra_s * 1000
    for delay_s in (60, 120, 240):
        await eventually(lambda: _nonempty(pipeline.scheduled()), what="a scheduled retry")
        ((member, due),) = await pipeline.scheduled()
        ttl_ms = await pipeline.redis.pttl(job_key_prefix + member.split(":", 1)[1])
        assert ttl_ms >= delay_s * 1000 + extra_ms - 1000, "the retry's arq job would expire before it runs"
        pipeline.clock.set(due)
        await eventually(lambda m=member: _moved_on(pipeline, m), what="the retry to run")  # type: ignore[misc]


async def _moved_on(p: Pipeline, member: str) -> bool:
    rows = await p.scheduled()
    return bool(rows) and rows[0][0] != member
