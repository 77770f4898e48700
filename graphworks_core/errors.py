"""The exception tree of graphworks, and the error classes the runner sorts failures into.

    GraphworksError
    ├── ConfigError              a setting or the TOML file is wrong (names the setting)
    ├── EnqueueError             a job was refused at enqueue; nothing was stored
    │   ├── PayloadInvalid       the payload failed its model (names the field)
    │   └── QueueUnavailable     Redis did not answer within REDIS_ENQUEUE_TIMEOUT_S
    └── JobFailure               raised while running a job; the runner classifies it
        ├── GraphHTTPError       Graph answered non-2xx: status, graph_code, request_id, retry_after_s
        ├── NetworkError         connect/read errors, resets, DNS
        ├── CallTimeout          our own per-call timeout fired
        ├── UnexpectedGraphReply Graph answered 2xx with a body that does not fit the call's model
        └── JobRejected          the job can never succeed as given (bad attachment path, oversize, ...)

Control flow (retry later, dead-letter) is not expressed with exceptions: the runner turns a
failure into a `Failure` record and a pure policy decides what happens next.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorClass(StrEnum):
    """The classes of DESIGN.md's table; each has its own retry policy."""

    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    NETWORK = "network"
    TIMEOUT = "timeout"
    AUTH = "auth"
    VALIDATION = "validation"
    UNDECODABLE = "undecodable"
    UNKNOWN = "unknown"


class GraphworksError(Exception):
    """Root of every error graphworks raises on purpose."""


class ConfigError(GraphworksError):
    """A setting is missing or wrong; the message names it."""


class EnqueueError(GraphworksError):
    """A job was refused at enqueue time; nothing was written to Redis."""


class IdempotencyConflict(EnqueueError):
    """An idempotency key already used by a request with another type, payload or options."""

    def __init__(self, key: str, job_id: str) -> None:
        self.key = key
        self.job_id = job_id
        super().__init__(f"idempotency key {key!r} was used for job {job_id} with a different request; use a new key")


class PayloadInvalid(EnqueueError):
    """The payload does not fit its job type's model."""

    def __init__(self, job_type: str, problems: list[str]) -> None:
        self.job_type = job_type
        self.problems = problems
        super().__init__(f"invalid {job_type} payload: " + "; ".join(problems))


class QueueUnavailable(EnqueueError):
    """Redis did not answer an enqueue in time. The job may or may not be stored (a reply can be
    lost after the write): enqueue again with the same idempotency key to be sure of one job."""

    def __init__(self, url: str, timeout_s: float, cause: BaseException | None) -> None:
        self.url = url
        self.timeout_s = timeout_s
        why = f"{type(cause).__name__}: {cause}" if cause is not None and str(cause) else "no answer"
        super().__init__(
            f"Redis at {url} did not take the enqueue within {timeout_s:g} s ({why}); the job may not be "
            "stored: enqueue it again (with an idempotency key, a second enqueue cannot make two jobs)"
        )


class JobFailure(GraphworksError):
    """Something went wrong while running a job."""


class GraphHTTPError(JobFailure):
    """Graph answered with a non-2xx status."""

    def __init__(
        self,
        status: int,
        *,
        graph_code: str | None = None,
        message: str | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
        retry_after_s: float | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.status = status
        self.graph_code = graph_code
        self.message = message
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.retry_after_s = retry_after_s
        self.method = method
        self.url = url
        where = f" on {method} {url}" if method and url else ""
        super().__init__(f"Graph answered {status} {graph_code or ''}{where}: {message or ''}".strip())


class NetworkError(JobFailure):
    """The request did not get an HTTP answer (refused, reset, DNS, read error)."""


class CallTimeout(JobFailure):
    """Our own per-call deadline passed before Graph answered."""


class UnexpectedGraphReply(JobFailure):
    """Graph answered 2xx, but with a body we cannot read as what the call returns (not JSON, or not
    the model's shape). Graph surprised us; the caller's payload is not at fault: the runner files it
    as `unknown` (cause UNEXPECTED_REPLY) and retries it a few times, keeping the status and a short
    excerpt of the body (already redacted) for the operator."""

    CAUSE = "unexpected_reply"

    def __init__(
        self,
        status: int,
        problem: str,
        *,
        excerpt: str,
        request_id: str | None = None,
        client_request_id: str | None = None,
        where: str | None = None,
    ) -> None:
        self.status = status
        self.problem = problem
        self.excerpt = excerpt
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.where = where
        on = f" to {where}" if where else ""
        super().__init__(f"unexpected Graph reply: {status}{on}, {problem}; body: {excerpt or '(empty)'}")


class JobRejected(JobFailure):
    """The job can never succeed as given; it is dead-lettered at once as validation."""
