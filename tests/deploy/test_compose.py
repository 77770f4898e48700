"""deploy/compose.yaml (and compose.sentinel.yaml on top of it) without a Docker engine: parsed
with yaml, every graphworks service's command run through the real CLI parser, every variable it
or env.example sets is a setting and the result loads as Settings, and the workers' stop grace
exceeds WORKER_SHUTDOWN_GRACE_S."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from graphworks_core.settings import Settings
from tests.deploy.files import DEPLOY, parse_command, setting_names

IMAGE = "${GRAPHWORKS_IMAGE:-graphworks:local}"


def compose(name: str = "compose.yaml") -> dict[str, Any]:
    body = yaml.safe_load((DEPLOY / name).read_text())  # resolves the x-* anchors and << merges
    assert isinstance(body, dict)
    return body


def graphworks_services() -> dict[str, dict[str, Any]]:
    services = compose()["services"]
    return {name: s for name, s in services.items() if s.get("image") == IMAGE}


def env_example() -> dict[str, str | None]:
    """NAME -> value of deploy/env.example; a commented-out `# NAME=value` example maps to None."""
    found: dict[str, str | None] = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        m = re.fullmatch(r"(#\s*)?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if m:
            found[m[2]] = None if m[1] else m[3]
    return found


def seconds(duration: str) -> float:
    """A compose duration such as `40s`, `1m30s`."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", duration)
    assert parts and duration, duration
    return int(parts[1] or 0) * 60 + float(parts[2] or 0)


def test_every_graphworks_command_parses_in_the_cli() -> None:
    services = graphworks_services()
    ran = {}
    for name, s in services.items():
        path, params = parse_command(s["command"])
        ran[name] = (" ".join(path[1:]), params.get("role"))
    assert ran == {"worker": ("worker", None), "webhooks": ("serve", "webhooks"), "api": ("serve", "api"),
                   "graphsim": ("graphsim", None)}  # fmt: skip


def test_the_images_own_command_and_healthcheck_parse() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    (entrypoint,) = re.findall(r"^ENTRYPOINT (\[.*\])$", text, re.M)
    assert json.loads(entrypoint) == ["graphworks"]
    (cmd,) = re.findall(r"^CMD (\[.*\])$", text, re.M)
    assert parse_command(json.loads(cmd))[0] == ["graphworks", "worker"]
    (check,) = re.findall(r"^\s+CMD (\[.*\])$", text, re.M)
    argv = json.loads(check)
    assert argv[0] == "graphworks" and parse_command(argv[1:])[0] == ["graphworks", "health"]


def test_the_api_is_published_on_loopback_only_and_the_receiver_publicly() -> None:
    services = graphworks_services()
    assert all(p.startswith("127.0.0.1:") for p in services["api"]["ports"])
    assert not any(p.startswith("127.0.0.1:") for p in services["webhooks"]["ports"])


def compose_env_names() -> set[str]:
    names = {k for s in graphworks_services().values() for k in s.get("environment", {})}
    for s in compose("compose.sentinel.yaml")["services"].values():
        if s.get("image") != "redis:7":
            names |= set(s.get("environment", {}))
    return names


def test_every_variable_is_a_setting() -> None:
    names = compose_env_names() | set(env_example())
    assert {"REDIS_URL", "REDIS_SENTINELS", "WORKER_SHUTDOWN_GRACE_S", "VIEWER_TOKEN", "LOG_LEVEL"} <= names
    assert names - setting_names() == set()


def settings_for(env: dict[str, str]) -> Settings:
    """Settings from this environment alone, as the container would read it (empty = unset)."""
    fields = {name.upper(): name for name in Settings.model_fields}
    kwargs = {fields[k]: (v or None) for k, v in env.items() if k in fields}
    return Settings(**kwargs)


def service_env(name: str, *files: str) -> dict[str, str]:
    """A service's environment as compose builds it: env.example's set values (as .env), then each
    file's `environment` over the last."""
    env = {k: v for k, v in env_example().items() if v is not None}
    for f in files:
        env.update({k: str(v) for k, v in compose(f)["services"][name].get("environment", {}).items()})
    return env


def test_the_workers_stop_grace_exceeds_their_shutdown_grace() -> None:
    worker = graphworks_services()["worker"]
    settings = settings_for(service_env("worker", "compose.yaml"))
    assert "WORKER_SHUTDOWN_GRACE_S" in worker["environment"]  # beside stop_grace_period, not in .env
    assert seconds(worker["stop_grace_period"]) >= settings.worker_shutdown_grace_s + 10
    assert seconds(worker["stop_grace_period"]) > Settings.model_fields["worker_shutdown_grace_s"].default


def test_every_graphworks_service_loads_its_settings() -> None:
    for name in ("worker", "webhooks", "api"):
        assert settings_for(service_env(name, "compose.yaml")).redis_url == "redis://redis:6379/0"


def test_the_sentinel_file_points_every_service_at_its_sentinels() -> None:
    overlay = compose("compose.sentinel.yaml")["services"]
    sentinels = {name: s for name, s in overlay.items() if "redis-sentinel" in " ".join(s.get("command", []))}
    assert len(sentinels) >= 3
    monitors = {re.search(r"sentinel monitor (\S+) (\S+) (\d+) (\d+)", s["command"][-1]).groups()  # type: ignore[union-attr]
                for s in sentinels.values()}  # fmt: skip
    ((master, host, port, quorum),) = monitors
    assert host in compose()["services"] and port == "6379" and int(quorum) <= len(sentinels) // 2 + 1
    for name in ("worker", "webhooks", "api"):
        settings = settings_for(service_env(name, "compose.yaml", "compose.sentinel.yaml"))
        assert settings.redis_url is None and settings.redis_sentinel_master == master
        assert {h for h, _ in settings.sentinel_addresses} == set(sentinels)
        assert {p for _, p in settings.sentinel_addresses} == {26379}
