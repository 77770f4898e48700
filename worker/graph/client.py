"""GraphClient: msgraph-sdk's request adapter and middleware, with its RetryHandler off.

The SDK builds URLs (its request builders) and runs its middleware; we send JSON bodies we
serialise ourselves and read the raw response (NativeResponseHandler) into our own models,
because the SDK's model parsing costs several ms of CPU per call. Retries are the runner's.
"""

from __future__ import annotations

import json
import uuid
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

from worker.errors import CallTimeout, NetworkError
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        # No base_url on the httpx client: a trailing slash there doubles slashes in SDK paths.
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
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
    ) -> httpx.Response:
        """Send one request to a path the SDK's builder names; return the 2xx response or raise our error."""
        info = RequestInformation(Method(method.upper()), builder.url_template, dict(builder.path_parameters))
        info.path_parameters["baseurl"] = self.base_url
        return await self._send(info, json_body, content, sender, force_refresh, headers, authorize=True)

    async def call_url(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        sender: str | None = None,
        force_refresh: bool = False,
        headers: dict[str, str] | None = None,
        authorize: bool = True,
    ) -> httpx.Response:
        """Send one request to an absolute URL Graph handed us (@odata.nextLink, deltaLink, upload URL).

        authorize=False for pre-authenticated URLs (upload sessions): Graph may answer 401 to a
        request that carries an Authorization header there.
        """
        info = RequestInformation(Method(method.upper()))
        info.url = url
        return await self._send(info, json_body, content, sender, force_refresh, headers, authorize=authorize)

    async def _send(
        self,
        info: RequestInformation,
        json_body: Any,
        content: bytes | None,
        sender: str | None,
        force_refresh: bool,
        headers: dict[str, str] | None,
        *,
        authorize: bool,
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
            info.content = content
        info.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        where = f"{info.http_method.value if info.http_method else '?'} {info.url_template or 'url'}"
        try:
            response: httpx.Response = await self._adapter.send_async(info, None, {})
        except httpx.TimeoutException as exc:
            raise CallTimeout(f"{where}: no answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise NetworkError(f"{where}: {type(exc).__name__}: {exc}") from exc
        return raise_for_status(response)
