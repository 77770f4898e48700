"""HTTP callback sink: POST a JSON batch, signed with HMAC-SHA256 over the exact body bytes.

Body: ``{"items": [<item>, ...]}``. Header ``X-Graphworks-Signature: sha256=<hex>``; a receiver
recomputes the HMAC of the raw body with the shared secret and compares in constant time
(`verify_signature`). A 2xx is success; 408/429/5xx and transport errors are retried with backoff;
any other status is a configuration problem (bad URL or secret) and dead-letters the job.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import httpx

from graphworks_core.errors import JobRejected, NetworkError
from worker.sinks.base import SinkRecord

SIGNATURE_HEADER = "X-Graphworks-Signature"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """For receivers: whether `header` is the signature of `body` under `secret`."""
    return header is not None and hmac.compare_digest(sign(body, secret), header.strip())


class SinkUnavailable(NetworkError):
    """The callback did not take the batch now (transport error, 408, 429, 5xx): retry later."""


class HttpCallbackSink:
    name = "http"

    def __init__(self, url: str, secret: str, *, timeout_s: float = 10.0, client: httpx.AsyncClient | None = None):
        self.url = url
        self._secret = secret
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout_s))

    async def send(self, records: Sequence[SinkRecord]) -> None:
        # The items are JSON already; splice them rather than parse and re-serialise.
        body = ('{"items":[' + ",".join(r.data for r in records) + "]}").encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, self._secret)}
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SinkUnavailable(f"inbound callback {self.url}: {type(exc).__name__}: {exc}") from exc
        if response.is_success:
            return
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise SinkUnavailable(f"inbound callback {self.url} answered {response.status_code}")
        raise JobRejected(
            f"inbound callback {self.url} refused the batch with {response.status_code}: "
            f"{response.text[:200]!r} (check INBOUND_HTTP_URL and INBOUND_HTTP_SECRET, then redrive)"
        )

    async def close(self) -> None:
        await self._client.aclose()
