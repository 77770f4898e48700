"""Delegated tokens per sender: refresh tokens kept in Redis, encrypted at rest, redeemed with MSAL.

Teams chat/channel posts need a delegated token (application permission works there only in
migration mode: https://learn.microsoft.com/en-us/graph/api/chatmessage-post#permissions), so each
sender's refresh token is stored once (`graphworks tokens set-refresh`) and redeemed here for access
tokens. MSAL is the well-kept library for the refresh-token grant; azure-identity has no public API
that takes a refresh token. The store keeps the rotated refresh token Entra hands back, and the last
access token (also encrypted) until shortly before it expires.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import BaseModel

from graphworks_core import keys
from graphworks_core.clock import Clock, SystemClock
from graphworks_core.errors import ConfigError, JobRejected, NetworkError
from graphworks_core.settings import Settings

if TYPE_CHECKING:
    import redis.asyncio as aioredis

# Refresh a cached access token this long before it expires, so a call never carries a dying one.
EXPIRY_MARGIN_S = 300.0
# Grant errors that no retry can fix: the user must sign in (consent) again, or the app is misconfigured.
# https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes#handling-error-codes-in-your-application
PERMANENT_GRANT_ERRORS = frozenset(
    {"invalid_grant", "invalid_client", "unauthorized_client", "interaction_required", "consent_required"}
)


class StoredTokens(BaseModel):
    refresh_token: str
    access_token: str | None = None
    expires_at: float | None = None  # epoch seconds


def fernet_from(keys_csv: str) -> MultiFernet:
    """Comma-separated Fernet keys: the first encrypts, all decrypt (so a key can be rotated)."""
    try:
        return MultiFernet([Fernet(k.strip().encode()) for k in keys_csv.split(",") if k.strip()])
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            "GRAPH_TOKEN_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64 bytes; make one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
        ) from exc


class DelegatedTokenStore:
    """One Redis string per sender holding its tokens as Fernet ciphertext."""

    def __init__(self, redis: aioredis.Redis, fernet: MultiFernet) -> None:
        self.redis = redis
        self.fernet = fernet

    async def get(self, sender: str) -> StoredTokens | None:
        raw = await self.redis.get(keys.delegated_token(sender))
        if raw is None:
            return None
        try:
            return StoredTokens.model_validate_json(self.fernet.decrypt(raw))
        except InvalidToken as exc:
            raise JobRejected(
                f"the stored tokens for {sender} cannot be decrypted with GRAPH_TOKEN_ENCRYPTION_KEY "
                "(was the key changed without keeping the old one?)"
            ) from exc

    async def put(self, sender: str, tokens: StoredTokens) -> None:
        await self.redis.set(keys.delegated_token(sender), self.fernet.encrypt(tokens.model_dump_json().encode()))

    async def delete(self, sender: str) -> bool:
        return bool(await self.redis.delete(keys.delegated_token(sender)))


@dataclass(frozen=True)
class Grant:
    access_token: str
    refresh_token: str | None
    expires_in_s: float


class RefreshTokenGrant(Protocol):
    async def redeem(self, refresh_token: str, scopes: list[str]) -> Grant: ...


class MsalRefreshGrant:
    """The OAuth2 refresh-token grant at the Microsoft identity platform's token endpoint, via MSAL.

    MSAL is synchronous (requests); each grant runs in a thread. `http_client` is MSAL's own seam
    (an object like `requests.Session`): tests hand one that reaches a fake endpoint on loopback.
    """

    def __init__(
        self,
        authority: str,
        client_id: str,
        *,
        client_credential: str | dict[str, str] | None = None,
        http_client: Any = None,
    ) -> None:
        self._args: dict[str, Any] = {"authority": authority, "client_id": client_id}
        if http_client is not None:
            self._args["http_client"] = http_client
        self._credential = client_credential
        self._app: Any = None
        self._lock = asyncio.Lock()

    def _application(self) -> Any:
        import msal  # type: ignore[import-untyped]

        if self._credential is None:
            return msal.PublicClientApplication(**self._args)
        return msal.ConfidentialClientApplication(client_credential=self._credential, **self._args)

    async def redeem(self, refresh_token: str, scopes: list[str]) -> Grant:
        async with self._lock:
            if self._app is None:  # building it fetches the tenant's OpenID configuration (blocking)
                self._app = await asyncio.to_thread(self._application)
        try:
            result = await asyncio.to_thread(self._app.acquire_token_by_refresh_token, refresh_token, scopes)
        except (OSError, ValueError) as exc:  # requests' errors are OSErrors; bad JSON a ValueError
            raise NetworkError(f"token endpoint: {type(exc).__name__}: {exc}") from exc
        if "error" in result:
            detail = f"{result['error']}: {str(result.get('error_description', ''))[:300]}"
            if result["error"] in PERMANENT_GRANT_ERRORS:
                raise JobRejected(f"the identity platform refused the stored refresh token ({detail}); "
                                  "the user must sign in again and the new refresh token be stored")  # fmt: skip
            raise NetworkError(f"token endpoint answered {detail}")
        return Grant(result["access_token"], result.get("refresh_token"), float(result.get("expires_in", 3600)))


class DelegatedTokenProvider:
    """Access tokens per sender: the cached one while it is fresh, else (or when forced) a new grant."""

    def __init__(
        self,
        store: DelegatedTokenStore,
        grant: RefreshTokenGrant,
        scopes: list[str],
        *,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.grant = grant
        self.scopes = scopes
        self.clock = clock or SystemClock()
        self._locks: dict[str, asyncio.Lock] = {}

    async def token(self, *, sender: str | None = None, force_refresh: bool = False) -> str:
        if sender is None:
            raise JobRejected("a delegated token needs a sender (the user the message is sent as)")
        stored = await self._stored(sender)
        if not force_refresh and (cached := self._fresh(stored)):
            return cached
        seen = stored.access_token
        async with self._locks.setdefault(sender.lower(), asyncio.Lock()):
            stored = await self._stored(sender)
            # Another job got a new token while we waited for the lock: it is as new as ours would be.
            if (cached := self._fresh(stored)) and (not force_refresh or cached != seen):
                return cached
            granted = await self.grant.redeem(stored.refresh_token, self.scopes)
            renewed = StoredTokens(
                # Entra rotates refresh tokens: keep the new one, or the old if none came back.
                refresh_token=granted.refresh_token or stored.refresh_token,
                access_token=granted.access_token,
                expires_at=self.clock.now() + granted.expires_in_s,
            )
            await self.store.put(sender, renewed)
            return granted.access_token

    async def _stored(self, sender: str) -> StoredTokens:
        stored = await self.store.get(sender)
        if stored is None:
            raise JobRejected(
                f"no refresh token is stored for sender {sender}: store one with "
                f"`graphworks tokens set-refresh {sender}` (reads it from stdin)"
            )
        return stored

    def _fresh(self, stored: StoredTokens) -> str | None:
        if stored.access_token and stored.expires_at and stored.expires_at - EXPIRY_MARGIN_S > self.clock.now():
            return stored.access_token
        return None

    async def close(self) -> None:
        return None


def delegated_provider_from(
    settings: Settings, redis: aioredis.Redis, *, http_client: Any = None, clock: Clock | None = None
) -> DelegatedTokenProvider:
    if settings.graph_token_encryption_key is None:
        raise ConfigError("GRAPH_TOKEN_ENCRYPTION_KEY is required to store delegated tokens")
    if not (settings.graph_tenant_id and settings.graph_client_id):
        raise ConfigError("GRAPH_TENANT_ID and GRAPH_CLIENT_ID are required for delegated tokens")
    credential: str | dict[str, str] | None = None
    if settings.graph_client_secret is not None:
        credential = settings.graph_client_secret.get_secret_value()
    elif settings.graph_client_certificate_path is not None:
        credential = _certificate_credential(settings)
    authority = f"{settings.graph_authority_host.rstrip('/')}/{settings.graph_tenant_id}"
    grant = MsalRefreshGrant(authority, settings.graph_client_id, client_credential=credential,
                             http_client=http_client)  # fmt: skip
    store = DelegatedTokenStore(redis, fernet_from(settings.graph_token_encryption_key.get_secret_value()))
    return DelegatedTokenProvider(store, grant, settings.graph_delegated_scopes.split(), clock=clock)


def _certificate_credential(settings: Settings) -> dict[str, str]:
    """MSAL's certificate credential: the PEM private key and the certificate's SHA-1 thumbprint."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    assert settings.graph_client_certificate_path is not None
    pem = settings.graph_client_certificate_path.read_bytes()
    password = settings.graph_client_certificate_password
    key = serialization.load_pem_private_key(pem, password.get_secret_value().encode() if password else None)
    cert = x509.load_pem_x509_certificate(pem)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()  # fmt: skip
    return {"private_key": private, "thumbprint": cert.fingerprint(hashes.SHA1()).hex()}
