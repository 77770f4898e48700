"""Every Redis key graphworks writes, in one place. Prefix: `graphworks:`."""

from __future__ import annotations

PREFIX = "graphworks:"


def queue(name: str = "default") -> str:
    """arq's queue zset for a queue: members are arq job ids, scores priority-adjusted run times (ms)."""
    return f"{PREFIX}queue:{name}"


def scheduled(name: str = "default") -> str:
    """Jobs waiting for a future time (deferred enqueues, retries): zset of `PP:arq_job_id` by due ms."""
    return f"{PREFIX}scheduled:{name}"


def order(queue: str, ordering_key: str) -> str:
    """List: the jobs of one ordering key in enqueue order, `PP:DUE_MS:arq_job_id`; the head is the
    one queued or running, the rest wait for it to complete or be dead-lettered (worker/queue.py)."""
    return f"{PREFIX}order:{queue}:{ordering_key}"


def idempotency(key: str) -> str:
    """Holds the job id first enqueued with this idempotency key."""
    return f"{PREFIX}idem:{key}"


def final_marker(job_id: str, redrive_count: int) -> str:
    """Set once when a job (in one redrive generation) completes or is dead-lettered: counts it once."""
    return f"{PREFIX}final:{job_id}:{redrive_count}"


STATS = f"{PREFIX}stats"

AUDIT = f"{PREFIX}audit"  # stream: operator actions (worker/audit.py)
EVENTS = f"{PREFIX}events"  # stream: job transitions (event, job_id, type, data = the status record)


def dashboard_session(digest: str) -> str:
    """Hash: one dashboard sign-in (role, CSRF token, the token's digest), by the SHA-256 of its cookie; TTL."""
    return f"{PREFIX}dashboard:session:{digest}"


def job_status(job_id: str) -> str:
    """A job's status record (JSON; graphworks_core/status.py)."""
    return f"{PREFIX}job:{job_id}"


def job_waiting(job_id: str) -> str:
    """Set while someone waits for the job to end: its end then pushes to `job_done`."""
    return f"{PREFIX}job:{job_id}:waiting"


def job_done(job_id: str) -> str:
    """List a job's end pushes to, if anyone waits; waiters block on it (BLMOVE onto itself)."""
    return f"{PREFIX}job:{job_id}:done"


def jobs_index(job_type: str) -> str:
    """Zset (all scores 0): the ids of one type's jobs, which sort by creation time, for listing newest
    first by id range; trimmed past the status TTL."""
    return f"{PREFIX}jobs:{job_type}"


# -- pause, per-type depth, throughput (worker/pause.py, worker/queue_stats.py) --
PAUSED = f"{PREFIX}paused"  # set: the job types paused for every worker (survives restarts)


def parked(job_type: str) -> str:
    """Zset: a paused type's arq job ids taken out of the queue, by their queue score; put back on resume."""
    return f"{PREFIX}parked:{job_type}"


def pending(job_type: str) -> str:
    """Zset: one type's jobs not yet ended (queued, scheduled, running), job id by when it is or was due
    (ms); written by enqueue.lua, cleared by outcome.lua and cancel.lua: per-type depth without a scan."""
    return f"{PREFIX}pending:{job_type}"


def throughput(minute: int) -> str:
    """Hash for one minute (epoch minutes): `completed|retried|dead_lettered:<type>` -> count; expires after an hour."""
    return f"{PREFIX}tp:{minute}"


def worker_jobs(worker_id: str) -> str:
    """What one worker runs now and the paused types it has seen (JSON), refreshed every ~0.5 s."""
    return f"{PREFIX}worker:{worker_id}:jobs"


WORKERS = f"{PREFIX}workers"  # set: ids of workers that have announced themselves (pruned by readers)


def worker(worker_id: str) -> str:
    """One worker's liveness record (JSON), expiring one lease after its last heartbeat."""
    return f"{PREFIX}worker:{worker_id}"


DLQ_ENTRIES = f"{PREFIX}dlq:entries"  # hash: entry id -> entry JSON
DLQ_INDEX = f"{PREFIX}dlq:index"  # zset: entry id by last_failure_at (epoch seconds)
DLQ_UNREVIEWED = f"{PREFIX}dlq:unreviewed"  # zset: the unreviewed entries' ids, scored as DLQ_INDEX
DLQ_GROUPS = f"{PREFIX}dlq:groups"  # zset: group key (JSON [type, class, graph_code, status]) by entry count
DLQ_GROUP_OF = f"{PREFIX}dlq:group-of"  # hash: entry id -> its group key
DLQ_GROUPS_READY = f"{PREFIX}dlq:groups:ready"  # set once every entry is counted in its group (rebuild)


def dlq_group(group_key: str) -> str:
    """Zset: one dead-letter group's entry ids, scored as DLQ_INDEX."""
    return f"{PREFIX}dlq:group:{group_key}"


INBOUND_STREAM = f"{PREFIX}inbound"


def upload_progress(job_id: str) -> str:
    """Hash: how far a job's upload sessions got (draft id, upload URLs, next byte), so a retry resumes."""
    return f"{PREFIX}upload:{job_id}"


def delegated_token(sender: str) -> str:
    """A sender's delegated tokens (refresh + access), Fernet-encrypted at rest."""
    return f"{PREFIX}token:delegated:{sender.lower()}"


def subscription(subscription_id: str) -> str:
    """JSON record of one Graph subscription we created (resource, urls, expiry, clientState hash)."""
    return f"{PREFIX}subscription:{subscription_id}"


# -- recurring schedules (worker/schedules.py) --
SCHEDULES = f"{PREFIX}schedules"  # hash: schedule name -> its spec (JSON)
SCHEDULES_DUE = f"{PREFIX}schedules:due"  # zset: name of each unpaused schedule by its next tick (epoch s)


def schedule_runs(name: str) -> str:
    """Zset: one schedule's recent runs, job id by tick (epoch s); the newest few are kept."""
    return f"{PREFIX}schedule:{name}:runs"


SUBSCRIPTIONS = f"{PREFIX}subscriptions"  # zset: subscription id by expiration (epoch seconds)
WEBHOOK_COUNTERS = f"{PREFIX}webhooks:counters"  # hash: receiver/notification counter -> count

# -- inbound and sync processors --
INBOUND_GONE = f"{PREFIX}inbound:gone"  # capped stream: messages deleted before the inbound fetch
PROCESSOR_STATS = f"{PREFIX}stats:processors"  # hash: inbound.gone, sync.full_resyncs, ... -> count


def inbound_seen(digest: str) -> str:
    """Marker that one version of one inbound message reached the sink (SET NX, TTL)."""
    return f"{PREFIX}inbound:seen:{digest}"


def sync_state(tenant: str, resource: str, suffix: str) -> str:
    """Per (tenant, resource) sync state: `link` (JSON), `items` (hash id -> version), `seen` (set), `lock`."""
    return f"{PREFIX}sync:{tenant}:{resource}:{suffix}"


def limit_state(key: str) -> str:
    """A limit meter's booked time: zset of merged runs, member = start, score = end (epoch s);
    `key#bytes` for byte budgets (ratelimits/algorithm.py)."""
    return f"{PREFIX}limit:booked:{key}"


def limit_leases(key: str) -> str:
    """Concurrency leases on a limit key: zset of lease id by expiry (epoch seconds)."""
    return f"{PREFIX}limit:leases:{key}"


def limit_cooldown(key: str) -> str:
    """Set by a 429: the limit key is closed until this time (epoch seconds)."""
    return f"{PREFIX}limit:cool:{key}"


def limit_stats(key: str) -> str:
    """Counters of one limit key (sent, waited, deferred, blocked, cooldowns, throttled, rate buckets)."""
    return f"{PREFIX}limit:stats:{key}"


LIMIT_INDEX = f"{PREFIX}limit:index"  # zset: limit key by last use (epoch seconds)

# -- the API's brake on failed token attempts (worker/auth_brake.py) --
AUTH_COUNTERS = f"{PREFIX}auth:counters"  # hash: failures, blocked -> count (cluster-wide, for /metrics)


def auth_failures(client: str) -> str:
    """List: one client address's recent failed token attempts (epoch s, newest first), at most the limit
    plus one; expires a window after the last."""
    return f"{PREFIX}auth:fails:{client}"


def auth_hold(client: str) -> str:
    """Set when a client failed too often: it is refused (429) until this time (epoch s); expires with it."""
    return f"{PREFIX}auth:hold:{client}"


# -- metrics and alerts (worker/metrics_data.py, worker/alerts.py) --
GRAPH_REQUESTS = f"{PREFIX}graph:requests"  # hash: req:<api>:<status class>, throttled:<api> -> count
ALERTS_ACTIVE = f"{PREFIX}alerts:active"  # hash: alert id -> the active alert (JSON)


def metrics_snapshot(minute: int) -> str:
    """The counters as they stood at the start of one minute (epoch s // 60): JSON, kept an hour."""
    return f"{PREFIX}metrics:snap:{minute}"


def alerts_tick(tick: int) -> str:
    """SET NX by the worker that evaluates the alerts for this tick (epoch s // evaluate_every_s)."""
    return f"{PREFIX}alerts:tick:{tick}"
