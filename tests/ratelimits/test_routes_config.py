"""Graph's limits as data: which keys a request resolves to, and the `[limits]` TOML table."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphworks_core.clock import FakeClock
from graphworks_core.errors import ConfigError
from ratelimits.base import Use
from ratelimits.config import DEFAULT_APIS, LimitsConfig
from ratelimits.limiter import GraphLimiter
from ratelimits.memory import MemoryBackend
from ratelimits.routes import graph_path, resolve
from worker.config_file import load_file_config

BASE = "https://graph.microsoft.com/v1.0"


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/chats/19:abc/messages", [Use("teams.chat_post"), Use("teams.chat", "19:abc")]),
        ("POST", "/teams/t1/channels/19:c/messages", [Use("teams.channel_post"), Use("teams.channel", "t1:19:c")]),
        (
            "POST",
            "/teams/t1/channels/19:c/messages/m1/replies",
            [Use("teams.channel_post"), Use("teams.channel", "t1:19:c")],
        ),
        ("GET", "/chats/19:abc/messages/123", [Use("teams.get")]),
        ("GET", "/chats/19:abc/messages", [Use("teams.get")]),
        ("GET", "/chats/19:abc/members", [Use("teams.other")]),
        ("POST", "/users/ops@contoso.com/sendMail", [Use("outlook", "ops@contoso.com")]),
        ("GET", "/users/ops@contoso.com/mailFolders/inbox/messages/delta", [Use("outlook", "ops@contoso.com")]),
        ("POST", "/users/u1/messages/m1/attachments/createUploadSession", [Use("outlook", "u1")]),
        ("GET", "/users/u1/drive/root/children", [Use("files")]),
        ("PUT", "/drives/d1/items/i1/content", [Use("files")]),
        ("GET", "/sites/s1/lists", [Use("files")]),
        ("POST", "/subscriptions", []),
        ("GET", "/users/u1", []),
    ],
)
def test_route_table(method: str, path: str, expected: list[Use]) -> None:
    assert resolve(method, path) == expected


def test_paths_are_taken_below_the_version_and_decoded() -> None:
    assert graph_path(BASE + "/chats/19%3Aabc/messages?$top=5", BASE) == "/chats/19:abc/messages"
    assert graph_path("https://graph.microsoft.com/beta/users/a/messages", BASE) == "/users/a/messages"
    assert graph_path("http://127.0.0.1:9/v1.0/users/a/sendMail", "http://127.0.0.1:9/v1.0") == "/users/a/sendMail"


def test_a_request_resolves_to_keys_with_tenant_and_scope() -> None:
    limiter = GraphLimiter(MemoryBackend(), LimitsConfig(), tenant="contoso", base_url=BASE, clock=FakeClock())
    assert limiter.plan("POST", BASE + "/chats/19:abc/messages").names == (
        "teams.chat_post:contoso", "teams.chat:19:abc", "global:contoso",
    )  # fmt: skip
    mail = limiter.plan("POST", BASE + "/users/Ops@Contoso.com/sendMail")
    assert mail.names == ("outlook:contoso:ops@contoso.com", "global:contoso")
    assert [lease.limit for lease in mail.leases] == [4]
    explicit = limiter.plan("PUT", "https://upload.example/x", [Use("outlook", "a@b.c", upload_bytes=10)])
    assert [m.key for m in explicit.meters] == [
        "outlook:contoso:a@b.c",
        "outlook:contoso:a@b.c#bytes",
        "global:contoso",
    ]


def test_toml_limits_override_defaults_and_add_apis(tmp_path: Path) -> None:
    path = tmp_path / "graphworks.toml"
    path.write_text(
        "[limits]\nmax_wait_s = 1.5\nheadroom = 0.9\n"
        '[limits.apis."teams.chat"]\nrate = 2\n'
        "[limits.apis.files]\noff = true\n"
        '[limits.apis.reports]\nkey = "reports:{tenant}"\nrate = 5\nper_s = 10\n'
    )
    config = load_file_config(path).limits
    apis = config.resolved()
    assert (config.max_wait_s, config.headroom) == (1.5, 0.9)
    assert apis["teams.chat"].rate == 2 and apis["teams.chat"].key == DEFAULT_APIS["teams.chat"].key
    assert "files" not in apis
    assert apis["reports"].rate == 5
    assert apis["outlook"] == DEFAULT_APIS["outlook"]


def test_bad_limits_are_refused_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "graphworks.toml"
    path.write_text("[limits.apis.outlook]\nconcurency = 4\n")
    with pytest.raises(ConfigError, match="concurency"):
        load_file_config(path)
    path.write_text("[limits.apis.newapi]\nrate = 4\n")
    with pytest.raises(ConfigError, match="needs `key`"):
        load_file_config(path)
