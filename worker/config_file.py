"""The GRAPHWORKS_CONFIG TOML file: retry policies by class and job type (`[policies]`) and
Graph's rate limits (`[limits]`, ratelimits/config.py). A bad file fails at start, naming the
table and field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from graphworks_core.errors import ConfigError, ErrorClass
from graphworks_core.payloads import PAYLOAD_MODELS
from graphworks_core.settings import Settings, describe_errors, load_settings
from ratelimits.config import LimitsConfig
from worker.alerts import AlertsConfig
from worker.policy import PolicySet


class PolicyFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_retries: int | None = Field(None, ge=0)
    base_delay_s: float | None = Field(None, ge=0)
    factor: float | None = Field(None, ge=1)
    max_delay_s: float | None = Field(None, ge=0)
    jitter: float | None = Field(None, ge=0, le=1)
    honour_retry_after: bool | None = None

    def given(self) -> dict[str, object]:
        return self.model_dump(exclude_none=True)


class PoliciesSection(BaseModel):
    """`[policies.defaults.<class>]` and `[policies.types.<job_type>.<class>]` tables."""

    model_config = ConfigDict(extra="forbid")

    max_total_attempts: int = Field(12, ge=1)
    defaults: dict[ErrorClass, PolicyFields] = Field(default_factory=dict)
    types: dict[str, dict[ErrorClass, PolicyFields]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_types(self) -> PoliciesSection:
        unknown = sorted(set(self.types) - set(PAYLOAD_MODELS))
        if unknown:
            raise ValueError(f"unknown job type(s) {', '.join(unknown)}; known: {', '.join(sorted(PAYLOAD_MODELS))}")
        return self


class FileConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policies: PoliciesSection = Field(default_factory=PoliciesSection)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)  # Graph's limits: ratelimits/config.py
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)  # thresholds: worker/alerts.py

    def policy_set(self) -> PolicySet:
        base = PolicySet(max_total_attempts=self.policies.max_total_attempts)
        return base.with_overrides(
            {c: f.given() for c, f in self.policies.defaults.items()},
            {t: {c: f.given() for c, f in m.items()} for t, m in self.policies.types.items()},
        )


def load_file_config(path: Path | None) -> FileConfig:
    """The file GRAPHWORKS_CONFIG names (None: every default); ConfigError naming what is wrong."""
    if path is None:
        return FileConfig()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"GRAPHWORKS_CONFIG: file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"GRAPHWORKS_CONFIG: {path} is not valid TOML: {exc}") from exc
    try:
        config = FileConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"GRAPHWORKS_CONFIG {path}: {describe_errors(exc, env=False)}") from exc
    try:
        config.policy_set()  # a policy the overrides make impossible fails now, not at the first failure
    except ValueError as exc:
        raise ConfigError(f"GRAPHWORKS_CONFIG: {exc}") from exc
    return config


def load_config(**overrides: Any) -> tuple[Settings, FileConfig]:
    """What a process reads at start: the settings from the environment and the file they name,
    both validated, so a bad value stops it before any work with the setting or field named."""
    settings = load_settings(**overrides)
    return settings, load_file_config(settings.graphworks_config)
