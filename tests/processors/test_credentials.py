"""Token providers: delegated tokens from the encrypted Redis store via MSAL against graphsim's token
endpoint on loopback, app-only client credentials, and force_refresh giving a really new token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import requests
from cryptography.fernet import Fernet

from graphsim.faults import Fault
from graphsim.server import SimServer
from graphworks_core import keys
from graphworks_core.clock import FakeClock
from graphworks_core.errors import JobRejected
from graphworks_core.settings import load_settings
from tests.integration.conftest import Pipeline, eventually
from tests.processors.conftest import running_pipeline
from worker.graph.auth import ClientCredentialsProvider, RoutingTokenProvider, StaticTokenProvider, azure_credential
from worker.graph.client import GraphClient
from worker.graph.delegated import DelegatedTokenProvider, StoredTokens, delegated_provider_from

KEY = Fernet.generate_key().decode()
SENDER = "ann@contoso.com"


class Loopback(requests.Session):
    """MSAL's http_client seam: login.microsoftonline.com is graphsim on loopback, nothing leaves the host."""

    def __init__(self, root_url: str) -> None:
        super().__init__()
        self.root_url = root_url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        url = str(url).replace("https://login.microsoftonline.com", self.root_url)
        assert url.startswith(self.root_url), f"MSAL tried to reach {url}"
        return super().request(method, url, *args, **kwargs)


def delegated(redis: aioredis.Redis, sim: SimServer, clock: FakeClock) -> DelegatedTokenProvider:
    settings = load_settings(
        graph_tenant_id="tenant-1",
        graph_client_id="app-1",
        graph_client_secret="s3cret",
        graph_token_encryption_key=KEY,
        graph_base_url=sim.base_url,
    )
    return delegated_provider_from(settings, redis, http_client=Loopback(sim.root_url), clock=clock)


async def test_cached_token_then_forced_refresh_gets_a_new_one(redis: aioredis.Redis, graphsim: SimServer) -> None:
    clock = FakeClock()
    provider = delegated(redis, graphsim, clock)
    rt = graphsim.state.identity.issue_refresh_token(SENDER)
    await provider.store.put(SENDER, StoredTokens(refresh_token=rt))

    first = await provider.token(sender=SENDER)
    assert await provider.token(sender=SENDER) == first, "a fresh cached token is reused"
    forced = await provider.token(sender=SENDER, force_refresh=True)
    assert forced != first and forced.startswith("at.")
    grants = graphsim.state.identity.grants()
    assert len(grants) == 2 and grants[0].refresh_token_used == rt
    assert grants[1].refresh_token_used == grants[0].refresh_token, "the rotated refresh token was kept"
    assert grants[0].client_id == "app-1"

    clock.advance(3600)  # past expiry (minus the margin): a new grant without forcing
    assert await provider.token(sender=SENDER) not in (first, forced)


async def test_tokens_are_encrypted_at_rest(redis: aioredis.Redis, graphsim: SimServer) -> None:
    provider = delegated(redis, graphsim, FakeClock())
    await provider.store.put(SENDER, StoredTokens(refresh_token="rt.secret-value", access_token="at.secret"))
    raw = await redis.get(keys.delegated_token(SENDER))
    assert raw is not None and b"secret" not in raw
    assert (await provider.store.get(SENDER)) == StoredTokens(refresh_token="rt.secret-value", access_token="at.secret")


async def test_revoked_or_missing_refresh_token_is_a_clear_rejection(
    redis: aioredis.Redis, graphsim: SimServer
) -> None:
    provider = delegated(redis, graphsim, FakeClock())
    with pytest.raises(JobRejected, match=r"no refresh token is stored for sender ann@contoso\.com"):
        await provider.token(sender=SENDER)
    await provider.store.put(SENDER, StoredTokens(refresh_token="rt.1.revoked"))
    with pytest.raises(JobRejected, match=r"invalid_grant.*must sign in again"):
        await provider.token(sender=SENDER)


@pytest.fixture
async def delegated_pipeline(redis: aioredis.Redis, redis_url: str, graphsim: SimServer) -> AsyncIterator[Pipeline]:
    async with running_pipeline(redis, redis_url, graphsim) as pipe:
        provider = delegated(redis, graphsim, pipe.clock)
        old = pipe.runner.graph
        pipe.runner.graph = GraphClient(graphsim.base_url, RoutingTokenProvider(StaticTokenProvider("app"), provider))
        await old.close()
        yield pipe


async def test_401_refreshes_the_senders_token_once(delegated_pipeline: Pipeline) -> None:
    sim = delegated_pipeline.sim
    rt = sim.state.identity.issue_refresh_token(SENDER)
    await delegated_pipeline.runner.graph.tokens.delegated.store.put(SENDER, StoredTokens(refresh_token=rt))  # type: ignore[attr-defined]
    sim.state.add_fault(Fault(method="POST", path="/chats/*/messages", status=401))
    await delegated_pipeline.client.send_teams_message(chat_id="19:c", content="hi", sender=SENDER)
    await eventually(lambda: _completed(delegated_pipeline), what="completion after one refresh")

    first, second = delegated_pipeline.graph_requests()
    assert (first.status, second.status) == (401, 201)
    grants = sim.state.identity.grants()
    assert len(grants) == 2, "one grant for the first try, one forced by the 401"
    assert first.headers["authorization"] == f"Bearer {grants[0].access_token}"
    assert second.headers["authorization"] == f"Bearer {grants[1].access_token}"


async def test_app_only_calls_use_the_app_token_and_senders_need_a_store() -> None:
    routing = RoutingTokenProvider(StaticTokenProvider("app"), None)
    assert await routing.token() == "app"
    with pytest.raises(JobRejected, match=r"sends as bob@contoso\.com, which needs a delegated token"):
        await routing.token(sender="bob@contoso.com")


class FakeCredential:
    made = 0

    def __init__(self) -> None:
        FakeCredential.made += 1
        self.n = FakeCredential.made
        self.closed = False

    async def get_token(self, *scopes: str) -> Any:
        assert scopes == ("https://graph.microsoft.com/.default",)
        return type("T", (), {"token": f"app-token-{self.n}"})()

    async def close(self) -> None:
        self.closed = True


async def test_client_credentials_force_refresh_uses_a_new_credential() -> None:
    provider = ClientCredentialsProvider(FakeCredential)
    first = await provider.token()
    assert await provider.token() == first
    assert await provider.token(force_refresh=True) != first


def test_certificate_option_builds_a_certificate_credential(tmp_path: Path) -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "graphworks-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "app.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    credential = azure_credential("tenant-1", "app-1", certificate_path=pem)
    assert type(credential).__name__ == "CertificateCredential"


async def _completed(pipe: Pipeline) -> bool:
    return (await pipe.stats.snapshot()).completed == 1


def test_cli_stores_a_refresh_token_from_stdin_encrypted(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import redis as sync_redis
    from click.testing import CliRunner

    from graphworks.cli.main import cli

    env = {
        "REDIS_URL": redis_url,
        "GRAPH_TENANT_ID": "t",
        "GRAPH_CLIENT_ID": "c",
        "GRAPH_CLIENT_SECRET": "s",
        "GRAPH_TOKEN_ENCRYPTION_KEY": KEY,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = CliRunner().invoke(cli, ["tokens", "set-refresh", SENDER], input="rt.from-sign-in\n")
    assert out.exit_code == 0, out.output
    raw = sync_redis.Redis.from_url(redis_url).get(keys.delegated_token(SENDER))
    assert raw is not None and b"from-sign-in" not in raw
    assert StoredTokens.model_validate_json(Fernet(KEY.encode()).decrypt(raw)).refresh_token == "rt.from-sign-in"
    assert "deleted" in CliRunner().invoke(cli, ["tokens", "delete", SENDER]).output
