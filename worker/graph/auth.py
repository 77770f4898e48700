"""Token providers: where the bearer token for a Graph call comes from.

App-only calls use client credentials (azure-identity); Teams sends need a delegated token for the
sender, which a pluggable provider supplies. A static provider serves tests and graphsim.
"""

from __future__ import annotations

from typing import Protocol

from worker.errors import ConfigError
from worker.settings import Settings

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class TokenProvider(Protocol):
    async def token(self, *, sender: str | None = None, force_refresh: bool = False) -> str:
        """A bearer token; force_refresh asks for a new one instead of a cached one (after a 401)."""

    async def close(self) -> None: ...


class StaticTokenProvider:
    """Always the same token (GRAPH_STATIC_TOKEN): for graphsim and tests."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self, *, sender: str | None = None, force_refresh: bool = False) -> str:
        return self._token

    async def close(self) -> None:
        return None


class ClientCredentialsProvider:
    """App-only tokens by the client-credentials flow, cached by azure-identity."""

    def __init__(self, tenant_id: str, client_id: str, client_secret: str) -> None:
        from azure.identity.aio import ClientSecretCredential

        self._args = (tenant_id, client_id, client_secret)
        self._credential = ClientSecretCredential(*self._args)

    async def token(self, *, sender: str | None = None, force_refresh: bool = False) -> str:
        if force_refresh:
            # azure-identity serves its cache while a token is unexpired; a new credential does not.
            from azure.identity.aio import ClientSecretCredential

            await self._credential.close()
            self._credential = ClientSecretCredential(*self._args)
        access = await self._credential.get_token(GRAPH_SCOPE)
        return access.token

    async def close(self) -> None:
        await self._credential.close()


def token_provider_from(settings: Settings) -> TokenProvider:
    if settings.graph_static_token is not None:
        return StaticTokenProvider(settings.graph_static_token.get_secret_value())
    if settings.graph_tenant_id and settings.graph_client_id and settings.graph_client_secret:
        return ClientCredentialsProvider(
            settings.graph_tenant_id, settings.graph_client_id, settings.graph_client_secret.get_secret_value()
        )
    raise ConfigError(
        "no Graph credentials: set GRAPH_TENANT_ID, GRAPH_CLIENT_ID and GRAPH_CLIENT_SECRET, "
        "or GRAPH_STATIC_TOKEN for graphsim"
    )
