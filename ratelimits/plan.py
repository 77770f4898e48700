"""A request's limits turned into what a backend checks: meters, leases and cooldown keys.

A `Plan` is built per request by the limiter (from the route table and the limits config) and
handed to a backend, which checks all of it atomically. Key names here are logical
(`outlook:contoso:ops@contoso.com`); a backend maps them onto its storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ratelimits.config import ApiLimit
from ratelimits.use import Use


@dataclass(frozen=True)
class Meter:
    """A paced meter: this request occupies [slot, slot + step_s) of the key's timeline.

    `merge_gap_s`: booked intervals closer than this are kept as one run (algorithm.py).
    """

    key: str
    step_s: float
    merge_gap_s: float


@dataclass(frozen=True)
class Lease:
    """A concurrency limit: at most `limit` leases on `key`, each expiring `ttl_s` after its slot."""

    key: str
    limit: int
    ttl_s: float


@dataclass(frozen=True)
class Plan:
    names: tuple[str, ...]  # the limit keys (stats, cooldown)
    meters: tuple[Meter, ...] = ()
    leases: tuple[Lease, ...] = ()
    cools: tuple[bool, ...] = field(default=())  # per name: does a 429 close it?

    @property
    def signature(self) -> tuple[str, ...]:
        """What a booking is valid for: the meters it was charged on."""
        return tuple(sorted(m.key for m in self.meters))

    @property
    def empty(self) -> bool:
        return not self.names


def key_for(api: ApiLimit, tenant: str, scope: str) -> str:
    # Mailbox names are case-insensitive in Exchange: one mailbox, one key.
    return api.key.format(tenant=tenant, scope=scope.lower() if "@" in scope else scope)


def build_plan(
    uses: Sequence[Use], apis: dict[str, ApiLimit], tenant: str, *, headroom: float, lease_ttl_s: float
) -> Plan:
    """Meters, leases and cooldowns for `uses`; unknown APIs are ignored (nothing to enforce)."""
    names: list[str] = []
    meters: list[Meter] = []
    leases: list[Lease] = []
    cools: list[bool] = []
    for use in uses:
        api = apis.get(use.api)
        if api is None:
            continue
        name = key_for(api, tenant, use.scope)
        if name in names:
            continue
        names.append(name)
        cools.append(api.cool_on_throttle)
        if api.rate is not None:
            step = api.per_s / (api.rate * headroom)
            meters.append(Meter(name, step, merge_gap_s=step))
        if api.upload_bytes is not None and use.upload_bytes > 0:
            step = use.upload_bytes * api.upload_per_s / (api.upload_bytes * headroom)
            meters.append(Meter(name + "#bytes", step, merge_gap_s=0.0))  # steps vary with size
        if api.concurrency is not None:
            leases.append(Lease(name, api.concurrency, lease_ttl_s))
    return Plan(tuple(names), tuple(meters), tuple(leases), tuple(cools))


@dataclass
class Reservation:
    """A decided slot for one request (`request`: its method and path), not yet waited for."""

    plan: Plan
    lease_id: str
    at: float
    request: tuple[str, str]
    used: bool = False
