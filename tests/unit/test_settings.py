"""load_settings(): environment variables and the GRAPHWORKS_CONFIG TOML file; bad values name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphworks_core.errors import ConfigError, ErrorClass
from graphworks_core.settings import Settings, load_settings
from worker.config_file import FileConfig, load_config, load_file_config
from worker.policy import DEFAULT_POLICIES


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No setting leaks in from the environment the tests run in."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "graphworks.toml"
    path.write_text(text)
    monkeypatch.setenv("GRAPHWORKS_CONFIG", str(path))
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert settings.redis_url is None
    assert settings.graph_base == "https://graph.microsoft.com/v1.0"
    assert settings.graphworks_config is None
    policies = load_config()[1].policy_set()
    for error_class in ErrorClass:
        assert policies.for_("mail", error_class) == DEFAULT_POLICIES[error_class]


def test_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://localhost:6390/3")
    monkeypatch.setenv("GRAPH_BASE_URL", "http://127.0.0.1:8085/v1.0/")
    monkeypatch.setenv("WORKER_MAX_JOBS", "7")
    settings = load_settings()
    assert settings.redis_url == "redis://localhost:6390/3"
    assert settings.graph_base == "http://127.0.0.1:8085/v1.0"
    assert settings.worker_max_jobs == 7


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WORKER_MAX_JOBS", "0"),
        ("WORKER_MAX_JOBS", "many"),
        ("GRAPH_BASE_URL", "not-a-url"),
        ("WORKER_QUEUE", "has spaces"),
        ("WORKER_POLL_DELAY_S", "-1"),
    ],
)
def test_a_bad_value_names_its_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert name in str(info.value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("call_timeout", ["60", "90"])
def test_call_timeout_must_be_below_job_timeout(monkeypatch: pytest.MonkeyPatch, call_timeout: str) -> None:
    monkeypatch.setenv("WORKER_JOB_TIMEOUT_S", "60")
    monkeypatch.setenv("GRAPH_CALL_TIMEOUT_S", call_timeout)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "GRAPH_CALL_TIMEOUT_S" in str(info.value)
    assert "WORKER_JOB_TIMEOUT_S" in str(info.value)


def test_call_timeout_below_job_timeout_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_JOB_TIMEOUT_S", "60")
    monkeypatch.setenv("GRAPH_CALL_TIMEOUT_S", "59.5")
    settings = load_settings()
    assert (settings.graph_call_timeout_s, settings.worker_job_timeout_s) == (59.5, 60.0)


# --- the TOML file ----------------------------------------------------------------------------

OVERRIDES = """
[policies]
max_total_attempts = 9

[policies.defaults.unavailable]
max_retries = 2

[policies.types.mail.throttled]
base_delay_s = 5
"""


def test_toml_overrides_policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file(tmp_path, monkeypatch, OVERRIDES)
    policies = load_config()[1].policy_set()

    assert policies.max_total_attempts == 9
    for job_type in ("mail", "teams_message"):
        unavailable = policies.for_(job_type, ErrorClass.UNAVAILABLE)
        assert unavailable.max_retries == 2
        assert unavailable.base_delay_s == DEFAULT_POLICIES[ErrorClass.UNAVAILABLE].base_delay_s

    mail_throttled = policies.for_("mail", ErrorClass.THROTTLED)
    assert mail_throttled.base_delay_s == 5.0
    assert mail_throttled.max_retries == DEFAULT_POLICIES[ErrorClass.THROTTLED].max_retries
    assert mail_throttled.honour_retry_after is True
    assert policies.for_("teams_message", ErrorClass.THROTTLED) == DEFAULT_POLICIES[ErrorClass.THROTTLED]
    assert policies.for_("mail", ErrorClass.NETWORK) == DEFAULT_POLICIES[ErrorClass.NETWORK]


def test_file_config_builds_the_same_policies(tmp_path: Path) -> None:
    path = tmp_path / "graphworks.toml"
    path.write_text(OVERRIDES)
    policies = load_file_config(path).policy_set()
    assert policies.for_("mail", ErrorClass.THROTTLED).base_delay_s == 5.0
    assert FileConfig().policy_set().for_("mail", ErrorClass.THROTTLED) == DEFAULT_POLICIES[ErrorClass.THROTTLED]


@pytest.mark.parametrize(
    ("toml", "path"),
    [
        ("[policies.defaults.unavailable]\nmax_retry = 2\n", "policies.defaults.unavailable.max_retry"),
        ('[policies.types.mail.throttled]\nbase_delay_s = "soon"\n', "policies.types.mail.throttled.base_delay_s"),
        ("[policies.defaults.network]\njitter = 2.0\n", "policies.defaults.network.jitter"),
        ("[policies.defaults.network]\nmax_retries = -1\n", "policies.defaults.network.max_retries"),
        ("[policies.defaults.slow]\nmax_retries = 1\n", "policies.defaults.slow"),
        ("[polices.defaults.network]\nmax_retries = 1\n", "polices"),
    ],
)
def test_a_bad_toml_value_names_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, path: str) -> None:
    config_file(tmp_path, monkeypatch, toml)
    with pytest.raises(ConfigError) as info:
        load_config()
    assert path in str(info.value)
    assert "GRAPHWORKS_CONFIG" in str(info.value)


def test_invalid_toml_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_file(tmp_path, monkeypatch, "[policies\n")
    with pytest.raises(ConfigError) as info:
        load_config()
    assert "GRAPHWORKS_CONFIG" in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_names_graphworks_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere.toml"
    monkeypatch.setenv("GRAPHWORKS_CONFIG", str(missing))
    with pytest.raises(ConfigError) as info:
        load_config()
    assert "GRAPHWORKS_CONFIG" in str(info.value)
    assert str(missing) in str(info.value)


def test_policy_table_for_an_unknown_job_type_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "typo.toml"
    path.write_text("[policies.types.mial.throttled]\nmax_retries = 1\n")
    with pytest.raises(ConfigError, match="mial"):
        load_file_config(path)


def test_empty_environment_value_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPH_STATIC_TOKEN", "")
    monkeypatch.setenv("WEBHOOK_PUBLIC_URL", "")
    settings = load_settings()
    assert settings.graph_static_token is None and settings.webhook_public_url is None
