"""Settings from the environment (pydantic-settings). The TOML file they name (GRAPHWORKS_CONFIG,
policies and limits) is read by worker/config_file.py.

Each setting has one name, listed in the README. A bad value fails at start with the setting's
name and what is wrong with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from graphworks_core.errors import ConfigError
from graphworks_core.keys import INBOUND_STREAM


class Settings(BaseSettings):
    # An empty variable (`GRAPH_STATIC_TOKEN=`) means unset, as in most env files.
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", env_ignore_empty=True)

    redis_url: str | None = Field(None, description="Redis for jobs and state; unset: embedded Redis (demo/dev)")
    graph_base_url: AnyHttpUrl = Field(AnyHttpUrl("https://graph.microsoft.com/v1.0"))
    graph_tenant_id: str | None = None
    graph_client_id: str | None = None
    graph_client_secret: SecretStr | None = None
    graph_static_token: SecretStr | None = Field(None, description="a fixed bearer token (tests, graphsim)")
    webhook_public_url: AnyHttpUrl | None = None
    admin_token: SecretStr | None = Field(None, description="operator token: every API route")
    viewer_token: SecretStr | None = Field(None, description="read-only token: GETs and /metrics")
    service_token: SecretStr | None = Field(None, description="service code's token: /api/jobs* and /api/schedules*")
    api_max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="API requests with larger bodies get 413")
    dashboard_session_ttl_s: float = Field(
        8 * 3600, gt=0, description="a dashboard sign-in lasts this long (the session cookie and its record in Redis)"
    )
    api_auth_failures_per_min: int = Field(
        20, ge=1, description="missing or wrong tokens from one client in a minute before the API answers it 429"
    )
    graphworks_config: Path | None = Field(None, description="TOML file with policies and limits")

    worker_queue: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    worker_max_jobs: int = Field(100, ge=1, le=10_000)
    worker_poll_delay_s: float = Field(0.01, gt=0, le=10)
    worker_job_timeout_s: float = Field(300.0, gt=0)
    worker_lease_s: float = Field(
        30.0, ge=1, description="a running job's lease, renewed by its worker; a dead worker's jobs rerun after it"
    )
    worker_shutdown_grace_s: float = Field(
        25.0, ge=0, description="SIGTERM: running jobs get this long to finish, then go back to the queue"
    )
    worker_max_job_runs: int = Field(
        5, ge=1, description="runs of one attempt (worker deaths) before it is dead-lettered"
    )
    worker_promote_interval_s: float = Field(0.05, gt=0)
    schedule_tick_s: float = Field(
        0.5, gt=0, le=60, description="how often every worker looks for due recurring schedules (one Redis command)"
    )
    graph_call_timeout_s: float = Field(30.0, gt=0)
    alert_teams_chat_id: str | None = Field(None, description="alerts' firing/resolved posts go to this Teams chat")
    alert_teams_sender: str | None = Field(None, description="the user alert posts are sent as (default sender: unset)")
    alert_mail_to: str | None = Field(None, description="alerts are mailed to these addresses (comma-separated)")
    alert_mail_from: str | None = Field(None, description="the mailbox alert mails are sent from (needed for mail)")
    queue_priority_step_s: float = Field(60.0, gt=0, description="head start per priority level; bounds starvation")
    idempotency_ttl_s: int = Field(86_400, ge=1)
    job_expiry_extra_s: float = Field(86_400.0, gt=0, description="how long a queued job key outlives its due time")
    job_status_ttl_s: int = Field(7 * 86_400, ge=60, description="how long a job's status record outlives its end")
    events_stream_maxlen: int = Field(100_000, ge=100, description="XADD MAXLEN ~ for graphworks:events")

    # Redis connections (graphworks_core/connections.py): every component's, never redis-py's defaults.
    redis_socket_timeout_s: float = Field(5.0, gt=0, description="a command without an answer fails after this")
    redis_connect_timeout_s: float = Field(2.0, gt=0)
    redis_enqueue_timeout_s: float = Field(
        10.0, gt=0, description="an enqueue raises QueueUnavailable after this long without Redis"
    )
    # Sentinel instead of REDIS_URL: every client asks the sentinels for the master and follows a failover.
    redis_sentinels: str | None = Field(None, description="comma-separated host:port of the Redis Sentinels")
    redis_sentinel_master: str | None = Field(None, min_length=1, description="the master's name at the sentinels")
    redis_sentinel_password: SecretStr | None = Field(None, description="the sentinels' own password (requirepass)")
    redis_password: SecretStr | None = Field(None, description="the master's password, with REDIS_SENTINELS")
    redis_wait_replicas: int = Field(
        0, ge=0, le=16, description="an enqueue returns once this many replicas hold it (WAIT); 0: no wait"
    )
    redis_wait_timeout_s: float = Field(
        0.5, gt=0, description="how long an enqueue waits for REDIS_WAIT_REPLICAS before it is unavailable"
    )

    # Webhook receiver and subscriptions (webhooks/); see README's settings table.
    webhook_max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="larger deliveries get 413")
    webhook_persist_deadline_s: float = Field(
        1.0, gt=0, lt=2.5, description="Redis lookup + enqueue must finish in this; else 503 (Graph allows 3 s)"
    )
    webhook_validation_token_max_chars: int = Field(1024, ge=16)
    webhook_workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes for `graphworks serve`")
    webhook_encryption_keys: Path | None = Field(
        None, description="PEM file or directory of <certificate id>.pem (private key + certificate)"
    )
    webhook_encryption_cert_id: str | None = Field(None, description="certificate id for new rich subscriptions")
    webhook_jwks_url: str = Field(
        "https://login.microsoftonline.com/common/discovery/v2.0/keys",
        description="JWKS for the validationTokens of rich notifications",
    )
    webhook_jwks_cache_s: int = Field(3600, ge=1)
    subscription_renew_margin_s: float = Field(
        1800.0, gt=0, description="renew a subscription when it expires within this"
    )
    subscription_renew_every_min: int = Field(5, ge=1, le=30, description="the renewal cron's period")

    # -- credentials --
    graph_client_certificate_path: Path | None = Field(None, description="PEM/PKCS12 cert instead of a secret")
    graph_client_certificate_password: SecretStr | None = None
    graph_authority_host: str = Field("https://login.microsoftonline.com", description="Microsoft identity platform")
    graph_token_encryption_key: SecretStr | None = Field(
        None, description="Fernet key encrypting delegated tokens in Redis; unset: no delegated tokens"
    )
    graph_delegated_scopes: str = Field("https://graph.microsoft.com/.default", description="space-separated")
    graph_default_sender: str | None = Field(None, description="Teams sends without a sender are sent as this user")

    # -- attachments and uploads --
    attachment_source_dir: Path | None = Field(None, description="local files must lie under it (unset: anywhere)")
    attachment_download_dir: Path = Field(Path("downloads"), description="where downloads are stored")
    attachment_chunk_bytes: int = Field(5 * 1024 * 1024, ge=327_680, le=60 * 1024 * 1024)
    attachment_simple_upload_max_bytes: int = Field(4 * 1024 * 1024, ge=0, le=250 * 1024 * 1024)
    attachment_scan_hook: str | None = Field(None, description="module:attribute of a ScanHook; unset: no scan")
    mail_upload_chunk_bytes: int = Field(3 * 1024 * 1024, ge=1024, le=4 * 1024 * 1024)
    upload_progress_ttl_s: int = Field(2 * 86_400, ge=60, description="how long upload progress is kept for resume")

    @model_validator(mode="after")
    def _chunks_are_320k_multiples(self) -> Settings:
        # OneDrive: "use a fragment size that is a multiple of 320 KiB (327,680 bytes)".
        # https://learn.microsoft.com/en-us/graph/api/driveitem-createuploadsession#upload-bytes-to-the-upload-session
        if self.attachment_chunk_bytes % 327_680:
            raise ValueError("ATTACHMENT_CHUNK_BYTES must be a multiple of 327680 (320 KiB), as OneDrive requires")
        return self

    # -- inbound and sync sinks; see README's settings table --
    inbound_sink: Literal["redis", "http", "callable"] = Field("redis", description="where inbound items go")
    inbound_stream: str = Field(INBOUND_STREAM, min_length=1, description="the Redis Stream of the redis sink")
    inbound_stream_maxlen: int = Field(100_000, ge=0, description="XADD MAXLEN ~ for the stream; 0: never trim")
    inbound_http_url: AnyHttpUrl | None = Field(None, description="the http sink's callback URL")
    inbound_http_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key signing the http sink's POSTs")
    inbound_http_timeout_s: float = Field(10.0, gt=0)
    inbound_callable: str | None = Field(None, description="the callable sink: package.module:function")
    inbound_dedup_ttl_s: int = Field(7 * 86_400, ge=60, description="how long a delivered message version is kept")
    sync_lock_ttl_s: float = Field(
        60.0, gt=0, description="one sync per resource: the lock's TTL, renewed per page (>= call timeout + 5 s)"
    )
    sync_page_size: int = Field(100, ge=1, le=1000, description="Prefer: odata.maxpagesize for delta pages")
    sync_job_budget_s: float | None = Field(
        None, gt=0, description="a sync job hands over to a new job after this long; unset: half the job timeout"
    )

    @model_validator(mode="after")
    def _sink_configured(self) -> Settings:
        if self.inbound_sink == "http" and (self.inbound_http_url is None or self.inbound_http_secret is None):
            raise ValueError("INBOUND_SINK=http needs INBOUND_HTTP_URL and INBOUND_HTTP_SECRET")
        if self.inbound_sink == "callable" and not self.inbound_callable:
            raise ValueError("INBOUND_SINK=callable needs INBOUND_CALLABLE (package.module:function)")
        return self

    @model_validator(mode="after")
    def _timeouts_nest(self) -> Settings:
        if self.graph_call_timeout_s >= self.worker_job_timeout_s:
            raise ValueError("GRAPH_CALL_TIMEOUT_S must be below WORKER_JOB_TIMEOUT_S, so our timeout fires first")
        if self.redis_socket_timeout_s >= self.worker_lease_s:
            raise ValueError("REDIS_SOCKET_TIMEOUT_S must be below WORKER_LEASE_S, or one slow renewal loses a lease")
        return self

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels_are_host_ports(cls, value: str | None) -> str | None:
        if value is not None:
            sentinel_addresses(value)  # raises naming the bad entry
        return value

    @model_validator(mode="after")
    def _one_redis(self) -> Settings:
        if self.redis_sentinels and self.redis_url:
            raise ValueError("give REDIS_URL or REDIS_SENTINELS, not both")
        if bool(self.redis_sentinels) != bool(self.redis_sentinel_master):
            raise ValueError("REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together: set both or neither")
        if self.redis_wait_replicas and self.redis_wait_timeout_s >= self.redis_enqueue_timeout_s:
            raise ValueError("REDIS_WAIT_TIMEOUT_S must be below REDIS_ENQUEUE_TIMEOUT_S")
        if self.redis_wait_replicas and self.redis_wait_timeout_s >= self.webhook_persist_deadline_s:
            raise ValueError(
                "REDIS_WAIT_TIMEOUT_S must be below WEBHOOK_PERSIST_DEADLINE_S, or the receiver's write never waits out"
            )
        return self

    @property
    def redis_configured(self) -> bool:
        """REDIS_URL or REDIS_SENTINELS names the Redis."""
        return bool(self.redis_url or self.redis_sentinels)

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """REDIS_SENTINELS as (host, port) pairs; empty without it."""
        return sentinel_addresses(self.redis_sentinels) if self.redis_sentinels else []

    @property
    def graph_base(self) -> str:
        return str(self.graph_base_url).rstrip("/")


def sentinel_addresses(text: str) -> list[tuple[str, int]]:
    """`host:port,host:port` (an IPv6 host in brackets) as pairs; ValueError naming a bad entry."""
    pairs = []
    for entry in (e.strip() for e in text.split(",")):
        host, _, port = entry.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{entry!r} is not host:port (REDIS_SENTINELS is host:port,host:port,...)")
        pairs.append((host, int(port)))
    return pairs


def describe_errors(err: ValidationError, *, env: bool) -> str:
    lines = []
    for e in err.errors():
        where = "_".join(str(p) for p in e["loc"]) or "settings"
        name = where.upper() if env else ".".join(str(p) for p in e["loc"])
        got = f" (got {e['input']!r})" if "input" in e and not isinstance(e["input"], dict) else ""
        lines.append(f"{name}: {e['msg']}{got}")
    return "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Read settings; raise ConfigError naming each bad setting."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, env=True)) from exc
    return settings
