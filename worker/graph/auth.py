"""Token providers: where the bearer token for a Graph call comes from.

App-only calls use client credentials (azure-identity, a secret or a certificate); Teams sends need
a delegated token for the sender, which a pluggable provider supplies (worker/graph/delegated.py:
refresh tokens kept encrypted in Redis). `RoutingTokenProvider` picks one per call: no sender ->
app-only, a sender -> delegated. A static provider serves tests and graphsim.

Every provider honours `force_refresh`: after a 401 the runner retries once asking for a token that
is really new, never the cached one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from graphworks_core.errors import ConfigError, JobRejected
from graphworks_core.settings import Settings

if TYPE_CHECKING:
    import redis.asyncio as aioredis

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class TokenProvider(Protocol):
    async def token(self, *, sender: str | None = None, force_refresh: bool = False) -> str:
        """A bearer token; force_refresh asks for a new one instead of a cached one (after a 401)."""

    async def close(self) -> None: ...


class AccessTokenSource(Protocol):
    """What we need of an azure-identity async credential."""

    async def get_token(self, *scopes: str) -> Any: ...

    async def close(self) -> None: ...


class StaticTokenProvider:
    """Always the same token (GRAPH_STATIC_TOKEN): for graphsim and tests."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self, *, sender: str | None = None, force_refresh: bool = False) -> str:
        return self._token

    async def close(self) -> None:
        return None


def azure_credential(
    tenant_id: str,
    client_id: str,
    *,
    secret: str | None = None,
    certificate_path: Path | None = None,
    certificate_password: str | None = None,
    authority: str | None = None,
) -> AccessTokenSource:
    """An azure-identity client-credentials credential: a certificate if given, else the secret."""
    from azure.identity.aio import CertificateCredential, ClientSecretCredential

    extra: dict[str, Any] = {"authority": authority} if authority else {}
    if certificate_path is not None:
        return CertificateCredential(
            tenant_id, client_id, str(certificate_path), password=certificate_password, **extra
        )
    if secret is None:
        raise ConfigError("GRAPH_CLIENT_SECRET or GRAPH_CLIENT_CERTIFICATE_PATH is required for app-only tokens")
    return ClientSecretCredential(tenant_id, client_id, secret, **extra)


class ClientCredentialsProvider:
    """App-only tokens by the client-credentials flow, cached by azure-identity."""

    def __init__(self, credential_factory: Callable[[], AccessTokenSource]) -> None:
        self._factory = credential_factory
        self._credential = credential_factory()

    async def token(self, *, sender: str | None = None, force_refresh: bool = False) -> str:
        if force_refresh:
            # azure-identity serves its cache while a token is unexpired and has no "skip the cache"
            # switch; a new credential starts with an empty cache, so its token is a fresh grant.
            old, self._credential = self._credential, self._factory()
            await old.close()
        access = await self._credential.get_token(GRAPH_SCOPE)
        return str(access.token)

    async def close(self) -> None:
        await self._credential.close()


class RoutingTokenProvider:
    """App-only for calls without a sender, delegated (per sender) for calls with one."""

    def __init__(self, app: TokenProvider | None, delegated: TokenProvider | None) -> None:
        self.app = app
        self.delegated = delegated

    async def token(self, *, sender: str | None = None, force_refresh: bool = False) -> str:
        if sender is not None:
            if self.delegated is None:
                raise JobRejected(
                    f"this job sends as {sender}, which needs a delegated token, but no delegated token store "
                    "is configured (set GRAPH_TOKEN_ENCRYPTION_KEY and store the user's refresh token)"
                )
            return await self.delegated.token(sender=sender, force_refresh=force_refresh)
        if self.app is None:
            raise JobRejected(
                "this call needs an app-only token, but no client credentials are configured "
                "(GRAPH_TENANT_ID, GRAPH_CLIENT_ID and GRAPH_CLIENT_SECRET or GRAPH_CLIENT_CERTIFICATE_PATH)"
            )
        return await self.app.token(force_refresh=force_refresh)

    async def close(self) -> None:
        for provider in (self.app, self.delegated):
            if provider is not None:
                await provider.close()


def token_provider_from(settings: Settings, redis: aioredis.Redis | None = None) -> TokenProvider:
    """The worker's provider: static (tests/graphsim) wins; else app-only and, with a key and Redis,
    delegated tokens from the encrypted refresh-token store."""
    if settings.graph_static_token is not None:
        return StaticTokenProvider(settings.graph_static_token.get_secret_value())
    tenant, client = settings.graph_tenant_id, settings.graph_client_id
    has_secret = settings.graph_client_secret is not None or settings.graph_client_certificate_path is not None
    if not (tenant and client and has_secret):
        raise ConfigError(
            "no Graph credentials: set GRAPH_TENANT_ID, GRAPH_CLIENT_ID and GRAPH_CLIENT_SECRET "
            "(or GRAPH_CLIENT_CERTIFICATE_PATH), or GRAPH_STATIC_TOKEN for graphsim"
        )
    secret = settings.graph_client_secret.get_secret_value() if settings.graph_client_secret else None
    password = settings.graph_client_certificate_password
    authority = settings.graph_authority_host

    def factory() -> AccessTokenSource:
        return azure_credential(
            tenant,
            client,
            secret=secret,
            certificate_path=settings.graph_client_certificate_path,
            certificate_password=password.get_secret_value() if password else None,
            authority=authority,
        )

    app = ClientCredentialsProvider(factory)
    delegated: TokenProvider | None = None
    if settings.graph_token_encryption_key is not None and redis is not None:
        from worker.graph.delegated import delegated_provider_from

        delegated = delegated_provider_from(settings, redis)
    return RoutingTokenProvider(app, delegated)
