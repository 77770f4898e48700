"""GraphClient: msgraph-sdk's request adapter and middleware, with its RetryHandler off.

The SDK builds URLs (its request builders) and runs its middleware; we send JSON bodies we
serialise ourselves and read the raw response (NativeResponseHandler) into our own models,
because the SDK's model parsing costs several ms of CPU per call. Retries are the runner's.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any, Protocol

import httpx
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.method import Method
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_abstractions.request_information import RequestInformation
from kiota_abstractions.request_option import RequestOption
from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from graphworks_core.errors import CallTimeout, NetworkError
from ratelimits.base import Limiter, NoLimit, Use
from ratelimits.transport import LimitedTransport, declared
from worker.graph.auth import TokenProvider
from worker.graph.responses import raise_for_status


class RequestBuilder(Protocol):
    url_template: str
    path_parameters: dict[str, Any]


def sdk_options() -> dict[str, RequestOption]:
    """Middleware options for the SDK: no retries (the runner decides), everything else default."""
    retry_off = RetryHandlerOption(max_retries=0, delay=0, should_retry=False)
    return {RetryHandlerOption.get_key(): retry_off}


class GraphClient:
    """One per worker process: a pooled httpx client under the SDK's adapter."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenProvider,
        *,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        # Applied to every request at the wire, under the SDK's middleware (call, call_url, stream,
        # each redirect hop): ratelimits/transport.py.
        self.limiter: Limiter = limiter or NoLimit()
        pool = httpx.Limits(max_connections=200, max_keepalive_connections=100)
        wire = transport or httpx.AsyncHTTPTransport(limits=pool)
        # No base_url on the httpx client: a trailing slash there doubles slashes in SDK paths.
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            transport=wire if limiter is None else LimitedTransport(wire, self.limiter),
            limits=pool,
        )
        self._http = GraphClientFactory.create_with_default_middleware(client=http, options=sdk_options())
        self._adapter = GraphRequestAdapter(AnonymousAuthenticationProvider(), client=self._http)
        self._adapter.base_url = self.base_url
        self.sdk = GraphServiceClient(request_adapter=self._adapter)

    async def close(self) -> None:
        await self._http.aclose()
        await self.tokens.close()

    async def call(
        self,
        method: str,
        builder: RequestBuilder,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        sender: str | None = None,
        force_refresh: bool = False,
        headers: dict[str, str] | None = None,
        limits: Sequence[Use] | None = None,
    ) -> httpx.Response:
        """Send one request to a path the SDK's builder names; return the 2xx response or raise our error.

        `limits`: the rate limits this request counts against, when the route table
        (ratelimits/routes.py) does not say (None: resolved from method and path).
        """
        info = RequestInformation(Method(method.upper()), builder.url_template, dict(builder.path_parameters))
        info.path_parameters["baseurl"] = self.base_url
        return await self._send(info, json_body, content, sender, force_refresh, headers, authorize=True, limits=limits)

    async def call_url(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        content: bytes | AsyncIterable[bytes] | None = None,
        sender: str | None = None,
        force_refresh: bool = False,
        headers: dict[str, str] | None = None,
        authorize: bool = True,
        limits: Sequence[Use] | None = None,
    ) -> httpx.Response:
        """Send one request to an absolute URL Graph handed us (@odata.nextLink, deltaLink, upload URL).

        authorize=False for pre-authenticated URLs (upload sessions): Graph may answer 401 to a
        request that carries an Authorization header there.
        """
        info = RequestInformation(Method(method.upper()))
        info.url = url
        return await self._send(
            info, json_body, content, sender, force_refresh, headers, authorize=authorize, limits=limits
        )

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        sender: str | None = None,
        force_refresh: bool = False,
        authorize: bool = True,
        limits: Sequence[Use] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """A 2xx response whose body is read as it arrives (downloads), never whole in memory.

        Goes through the SDK's middleware (its RedirectHandler follows the 302 Graph answers
        `/content` with, to a pre-authenticated URL); a non-2xx answer raises our error.
        """
        headers = {"client-request-id": str(uuid.uuid4())}
        if authorize:
            token = await self.tokens.token(sender=sender, force_refresh=force_refresh)
            headers["Authorization"] = f"Bearer {token}"
        try:
            with declared(limits):  # every hop takes its permit at the wire (ratelimits/transport.py)
                response = await self._http.send(self._http.build_request(method.upper(), url, headers=headers),
                                                 stream=True)  # fmt: skip
                # Graph answers /content with 302 to a pre-authenticated URL, often on another host:
                # follow it ourselves, without the Authorization header.
                # https://learn.microsoft.com/en-us/graph/api/driveitem-get-content#response
                for _ in range(5):
                    if not (response.is_redirect and "location" in response.headers):
                        break
                    await response.aclose()
                    target = str(response.url.join(response.headers["location"]))
                    plain = {"client-request-id": headers["client-request-id"]}
                    response = await self._http.send(self._http.build_request("GET", target, headers=plain),
                                                     stream=True)  # fmt: skip
                try:
                    if not response.is_success:
                        await response.aread()
                        raise_for_status(response)
                    yield response
                finally:
                    await response.aclose()
        except httpx.TimeoutException as exc:
            raise CallTimeout(f"{method} {url}: no answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise NetworkError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc

    async def _send(
        self,
        info: RequestInformation,
        json_body: Any,
        content: bytes | AsyncIterable[bytes] | None,
        sender: str | None,
        force_refresh: bool,
        headers: dict[str, str] | None,
        *,
        authorize: bool,
        limits: Sequence[Use] | None = None,
    ) -> httpx.Response:
        info.headers.try_add("Accept", "application/json")
        info.headers.try_add("client-request-id", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            info.headers.try_add(name, value)
        if authorize:
            token = await self.tokens.token(sender=sender, force_refresh=force_refresh)
            info.headers.try_add("Authorization", f"Bearer {token}")
        if json_body is not None:
            info.content = json.dumps(json_body, separators=(",", ":")).encode()
            info.headers.try_add("Content-Type", "application/json")
        elif content is not None:
            # An async iterable streams the body (upload fragments) instead of holding it: kiota
            # hands it to httpx as is; the caller gives Content-Length, which Graph requires.
            info.content = content  # type: ignore[assignment]
        info.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        method = info.http_method.value if info.http_method else "GET"
        where = f"{method} {info.url_template or 'url'}"
        # The URL expanded once (kiota would expand it again in send_async); the limiter decides on
        # it before the SDK builds anything, so a job that is only deferred costs no SDK work.
        url = info.url
        info.url = url
        size = len(info.content) if isinstance(info.content, bytes) else int((headers or {}).get("Content-Length", 0))
        reservation = await self.limiter.reserve(method, url, limits, body_bytes=size)
        try:
            # The request waits for its slot at the wire (ratelimits/transport.py); a 429 there
            # closes its scopes before the error reaches us.
            with declared(limits, reservation):
                response: httpx.Response = await self._adapter.send_async(info, None, {})
        except httpx.TimeoutException as exc:
            raise CallTimeout(f"{where}: no answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise NetworkError(f"{where}: {type(exc).__name__}: {exc}") from exc
        finally:
            if reservation is not None and not reservation.used:
                await self.limiter.release(reservation)
        return raise_for_status(response)
