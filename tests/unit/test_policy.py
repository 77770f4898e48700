"""decide() and PolicySet: hypothesis invariants, plus DESIGN.md's default table pinned exactly."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from graphworks_core.errors import ErrorClass
from worker.classify import Failure
from worker.policy import DEFAULT_POLICIES, ClassPolicy, DeadLetter, PolicySet, RetryDecision, decide

finite = {"allow_nan": False, "allow_infinity": False}
policies = st.builds(
    ClassPolicy,
    max_retries=st.integers(0, 10),
    base_delay_s=st.floats(0, 1e4, **finite),
    factor=st.floats(1, 10, **finite),
    max_delay_s=st.floats(0, 1e5, **finite),
    jitter=st.floats(0, 1, **finite),
    honour_retry_after=st.booleans(),
    refresh_auth=st.booleans(),
)
rands = st.floats(0, 1, exclude_max=True, **finite)
failure_numbers = st.integers(1, 12)
error_classes = st.sampled_from(ErrorClass)


def failure(error_class: ErrorClass = ErrorClass.UNKNOWN, retry_after_s: float | None = None) -> Failure:
    return Failure(error_class, "boom", retry_after_s=retry_after_s)


def nominal(policy: ClassPolicy, n: int) -> float:
    """The un-jittered delay of retry n, as ClassPolicy's docstring defines it."""
    return min(policy.base_delay_s * policy.factor ** (n - 1), policy.max_delay_s)


def retry_delay(decision: RetryDecision | DeadLetter) -> float:
    assert isinstance(decision, RetryDecision), decision
    return decision.delay_s


# --- invariants -------------------------------------------------------------------------------


@given(policies, failure_numbers, rands, st.none() | st.floats(-1e5, 1e5, **finite))
def test_delay_is_never_negative(policy: ClassPolicy, n: int, rand: float, retry_after: float | None) -> None:
    decision = decide(policy, failure(retry_after_s=retry_after), n, rand)
    if isinstance(decision, RetryDecision):
        assert decision.delay_s >= 0


@given(policies, failure_numbers, rands, st.booleans())
def test_computed_delay_is_capped_by_max_delay_and_nominal(
    policy: ClassPolicy, n: int, rand: float, give_retry_after: bool
) -> None:
    # Without a Retry-After that the policy honours, the delay is computed from the policy.
    retry_after = 7.5 if give_retry_after and not policy.honour_retry_after else None
    decision = decide(policy, failure(retry_after_s=retry_after), n, rand)
    if n > policy.max_retries:
        assert isinstance(decision, DeadLetter)
        return
    delay = retry_delay(decision)
    assert delay <= policy.max_delay_s
    assert delay <= nominal(policy, n)


@given(policies, failure_numbers, rands)
def test_jitter_reduces_the_delay_by_at_most_its_fraction(policy: ClassPolicy, n: int, rand: float) -> None:
    decision = decide(policy, failure(), n, rand)
    if n <= policy.max_retries:
        assert retry_delay(decision) >= nominal(policy, n) * (1 - policy.jitter)


@given(policies, failure_numbers, rands, st.floats(0, 1e5, **finite))
@example(ClassPolicy(5, honour_retry_after=True), 1, 0.0, 2.5)
@example(ClassPolicy(5, honour_retry_after=True, jitter=1.0, max_delay_s=1.0), 3, 0.99, 2.128)
def test_honoured_retry_after_is_waited_exactly(policy: ClassPolicy, n: int, rand: float, retry_after: float) -> None:
    policy = replace(policy, honour_retry_after=True)
    decision = decide(policy, failure(ErrorClass.THROTTLED, retry_after), n, rand)
    if n > policy.max_retries:
        assert isinstance(decision, DeadLetter)
    else:
        assert retry_delay(decision) == retry_after


@given(st.sampled_from([ErrorClass.VALIDATION, ErrorClass.UNDECODABLE]), failure_numbers, rands)
def test_validation_and_undecodable_are_never_retried(error_class: ErrorClass, n: int, rand: float) -> None:
    decision = decide(DEFAULT_POLICIES[error_class], failure(error_class, retry_after_s=1.0), n, rand)
    assert isinstance(decision, DeadLetter)


@given(policies, st.integers(1, 20), rands, st.none() | st.floats(0, 100, **finite))
def test_retries_stop_exactly_after_max_retries(
    policy: ClassPolicy, n: int, rand: float, retry_after: float | None
) -> None:
    decision = decide(policy, failure(retry_after_s=retry_after), n, rand)
    if n > policy.max_retries:
        assert isinstance(decision, DeadLetter)
    else:
        assert isinstance(decision, RetryDecision)
        assert decision.refresh_auth is policy.refresh_auth


@given(error_classes, st.integers(1, 8), rands)
def test_decide_is_pure(error_class: ErrorClass, n: int, rand: float) -> None:
    policy = DEFAULT_POLICIES[error_class]
    assert decide(policy, failure(error_class), n, rand) == decide(policy, failure(error_class), n, rand)


def test_failure_numbers_start_at_one() -> None:
    with pytest.raises(ValueError):
        decide(DEFAULT_POLICIES[ErrorClass.UNKNOWN], failure(), 0, 0.0)


@pytest.mark.parametrize(
    "fields",
    [{"max_retries": -1}, {"base_delay_s": -1.0}, {"max_delay_s": -1.0}, {"factor": 0.5}, {"jitter": 1.5}],
)
def test_invalid_policies_are_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ClassPolicy(**{"max_retries": 1, **fields})


# --- DESIGN.md's default table ----------------------------------------------------------------


def schedule(error_class: ErrorClass, retry_after_s: float | None = None, rand: float = 0.0) -> list[float]:
    """Delays chosen for failures 1, 2, ... until the default policy dead-letters (at most 20)."""
    delays = []
    for n in range(1, 21):
        decision = decide(DEFAULT_POLICIES[error_class], failure(error_class, retry_after_s), n, rand)
        if isinstance(decision, DeadLetter):
            return delays
        delays.append(decision.delay_s)
    raise AssertionError(f"{error_class} never dead-letters")


def test_throttled_without_retry_after_backs_off_from_60s_five_times() -> None:
    assert schedule(ErrorClass.THROTTLED) == [60.0, 120.0, 240.0, 480.0, 960.0]


def test_throttled_waits_retry_after_exactly_five_times() -> None:
    assert schedule(ErrorClass.THROTTLED, retry_after_s=2.128, rand=0.9) == [2.128] * 5


def test_throttled_jitter_is_at_most_ten_percent() -> None:
    delays = schedule(ErrorClass.THROTTLED, rand=0.999999)
    assert all(0.9 * base <= d < base for d, base in zip(delays, [60, 120, 240, 480, 960], strict=True))


@pytest.mark.parametrize("error_class", [ErrorClass.UNAVAILABLE, ErrorClass.NETWORK, ErrorClass.TIMEOUT])
def test_transient_classes_back_off_1_2_4_8_16(error_class: ErrorClass) -> None:
    assert schedule(error_class) == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_unavailable_honours_retry_after() -> None:
    assert schedule(ErrorClass.UNAVAILABLE, retry_after_s=2.5, rand=0.5) == [2.5] * 5


def test_network_ignores_a_retry_after() -> None:
    assert schedule(ErrorClass.NETWORK, retry_after_s=30.0) == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_auth_refreshes_the_token_and_retries_once_at_once() -> None:
    policy = DEFAULT_POLICIES[ErrorClass.AUTH]
    assert decide(policy, failure(ErrorClass.AUTH), 1, 0.7) == RetryDecision(0.0, refresh_auth=True)
    assert isinstance(decide(policy, failure(ErrorClass.AUTH), 2, 0.0), DeadLetter)


@pytest.mark.parametrize("error_class", [ErrorClass.VALIDATION, ErrorClass.UNDECODABLE])
def test_validation_dead_letters_at_the_first_failure(error_class: ErrorClass) -> None:
    assert schedule(error_class) == []


def test_unknown_gets_three_tries() -> None:
    assert schedule(ErrorClass.UNKNOWN) == [1.0, 2.0]


def test_every_class_has_a_default_policy() -> None:
    assert set(DEFAULT_POLICIES) == set(ErrorClass)


# --- PolicySet --------------------------------------------------------------------------------


def test_policy_set_defaults_to_the_default_table() -> None:
    policies = PolicySet()
    for error_class in ErrorClass:
        assert policies.for_("mail", error_class) == DEFAULT_POLICIES[error_class]


def test_type_override_wins_only_for_that_type_and_class() -> None:
    base = PolicySet(max_total_attempts=7)
    policies = base.with_overrides({}, {"mail": {ErrorClass.THROTTLED: {"base_delay_s": 5.0}}})

    mail_throttled = policies.for_("mail", ErrorClass.THROTTLED)
    assert mail_throttled.base_delay_s == 5.0
    # Fields not overridden are the default's.
    assert mail_throttled.max_retries == 5
    assert mail_throttled.honour_retry_after is True
    assert decide(mail_throttled, failure(ErrorClass.THROTTLED), 2, 0.0) == RetryDecision(10.0)

    assert policies.for_("teams_message", ErrorClass.THROTTLED) == DEFAULT_POLICIES[ErrorClass.THROTTLED]
    for error_class in set(ErrorClass) - {ErrorClass.THROTTLED}:
        assert policies.for_("mail", error_class) == DEFAULT_POLICIES[error_class]
    assert policies.max_total_attempts == 7


def test_default_override_applies_to_every_type_and_under_type_overrides() -> None:
    policies = PolicySet().with_overrides(
        {ErrorClass.UNAVAILABLE: {"max_retries": 2}},
        {"mail": {ErrorClass.UNAVAILABLE: {"base_delay_s": 3.0}}},
    )
    teams = policies.for_("teams_message", ErrorClass.UNAVAILABLE)
    mail = policies.for_("mail", ErrorClass.UNAVAILABLE)
    assert (teams.max_retries, teams.base_delay_s) == (2, 1.0)
    assert (mail.max_retries, mail.base_delay_s) == (2, 3.0)
    assert isinstance(decide(mail, failure(ErrorClass.UNAVAILABLE), 3, 0.0), DeadLetter)
    assert policies.for_("mail", ErrorClass.NETWORK) == DEFAULT_POLICIES[ErrorClass.NETWORK]


def test_overrides_leave_the_original_set_and_the_defaults_alone() -> None:
    original = PolicySet()
    original.with_overrides(
        {ErrorClass.NETWORK: {"max_retries": 1}}, {"mail": {ErrorClass.THROTTLED: {"max_retries": 0}}}
    )
    assert original.for_("mail", ErrorClass.THROTTLED) == DEFAULT_POLICIES[ErrorClass.THROTTLED]
    assert original.for_("mail", ErrorClass.NETWORK).max_retries == 5
    assert DEFAULT_POLICIES[ErrorClass.NETWORK].max_retries == 5


def test_an_invalid_override_is_refused() -> None:
    with pytest.raises(ValueError):
        PolicySet().with_overrides({ErrorClass.UNKNOWN: {"jitter": 2.0}}, {})
