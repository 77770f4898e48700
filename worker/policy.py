"""Retry policy as data plus one pure function: decide(policy, failure, n, rand) -> retry or dead-letter.

Defaults follow DESIGN.md's table (from Graph's throttling and error guidance); every number can be
overridden per job type in the TOML file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING

from graphworks_core.errors import ErrorClass

if TYPE_CHECKING:  # classify loads httpx; the policy only reads a Failure's fields
    from worker.classify import Failure


@dataclass(frozen=True)
class ClassPolicy:
    """How one error class is retried.

    max_retries: retries after the first failure of this class (0 = dead-letter at once).
    Delay of retry n (1-based): base_delay_s * factor**(n-1), capped at max_delay_s, then reduced
    by up to `jitter` (a fraction) at random so workers do not retry in lockstep.
    honour_retry_after: a Retry-After from Graph is waited exactly, fractional seconds included.
    """

    max_retries: int
    base_delay_s: float = 1.0
    factor: float = 2.0
    max_delay_s: float = 3600.0
    jitter: float = 0.0
    honour_retry_after: bool = False
    refresh_auth: bool = False

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay_s < 0 or self.max_delay_s < 0 or self.factor < 1:
            raise ValueError(f"invalid policy {self}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter is a fraction between 0 and 1")


@dataclass(frozen=True)
class RetryDecision:
    delay_s: float
    refresh_auth: bool = False


@dataclass(frozen=True)
class DeadLetter:
    reason: str


def decide(policy: ClassPolicy, failure: Failure, n: int, rand: float) -> RetryDecision | DeadLetter:
    """What to do after the n-th failure (n >= 1) of failure.error_class; rand is uniform in [0, 1)."""
    if n < 1:
        raise ValueError("n counts failures and starts at 1")
    if n > policy.max_retries:
        label = f"{failure.error_class} ({failure.cause})" if failure.cause else str(failure.error_class)
        if policy.max_retries == 0:
            return DeadLetter(f"{label} is not retried")
        return DeadLetter(f"{label}: still failing after {policy.max_retries} retries")
    if policy.honour_retry_after and failure.retry_after_s is not None:
        return RetryDecision(max(0.0, failure.retry_after_s), policy.refresh_auth)
    nominal = min(policy.base_delay_s * policy.factor ** (n - 1), policy.max_delay_s)
    return RetryDecision(nominal * (1.0 - policy.jitter * rand), policy.refresh_auth)


DEFAULT_POLICIES: Mapping[ErrorClass, ClassPolicy] = MappingProxyType(
    {
        ErrorClass.THROTTLED: ClassPolicy(5, base_delay_s=60.0, jitter=0.1, honour_retry_after=True),
        ErrorClass.UNAVAILABLE: ClassPolicy(5, base_delay_s=1.0, jitter=0.2, honour_retry_after=True),
        ErrorClass.NETWORK: ClassPolicy(5, base_delay_s=1.0, jitter=0.2),
        ErrorClass.TIMEOUT: ClassPolicy(5, base_delay_s=1.0, jitter=0.2),
        ErrorClass.AUTH: ClassPolicy(1, base_delay_s=0.0, refresh_auth=True),
        ErrorClass.VALIDATION: ClassPolicy(0),
        ErrorClass.UNDECODABLE: ClassPolicy(0),
        ErrorClass.UNKNOWN: ClassPolicy(2, base_delay_s=1.0, jitter=0.2),
    }
)


@dataclass(frozen=True)
class PolicySet:
    """Default policies per class, overrides per (job type, class), and a cap on attempts overall."""

    defaults: Mapping[ErrorClass, ClassPolicy] = field(default_factory=lambda: DEFAULT_POLICIES)
    by_type: Mapping[str, Mapping[ErrorClass, ClassPolicy]] = field(default_factory=dict)
    max_total_attempts: int = 12

    def for_(self, job_type: str, error_class: ErrorClass) -> ClassPolicy:
        return self.by_type.get(job_type, {}).get(error_class) or self.defaults[error_class]

    def with_overrides(
        self,
        defaults: Mapping[ErrorClass, Mapping[str, object]],
        by_type: Mapping[str, Mapping[ErrorClass, Mapping[str, object]]],
    ) -> PolicySet:
        """A new set with some fields of some policies replaced (as read from the TOML file)."""
        new_defaults = dict(self.defaults)
        for cls, fields in defaults.items():
            new_defaults[cls] = replace(new_defaults[cls], **fields)  # type: ignore[arg-type]
        new_by_type: dict[str, dict[ErrorClass, ClassPolicy]] = {t: dict(m) for t, m in self.by_type.items()}
        for job_type, classes in by_type.items():
            for cls, fields in classes.items():
                base = new_by_type.get(job_type, {}).get(cls) or new_defaults[cls]
                new_by_type.setdefault(job_type, {})[cls] = replace(base, **fields)  # type: ignore[arg-type]
        return PolicySet(MappingProxyType(new_defaults), new_by_type, self.max_total_attempts)
