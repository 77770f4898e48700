"""The limiter at the wire: an httpx transport that takes the permit for each request just
before its bytes leave, under msgraph-sdk's middleware.

Why here and not around `send_async`: the SDK spends ~2 ms of CPU per request after the call
(20+ ms on a process's first request), and a request that leaves that much after its slot
lands in Graph's window together with the next slot's. Here only the socket write is left.
Every hop counts (the SDK's redirects too); a 429, or a 503 with Retry-After, closes the
request's scopes before the error reaches the caller. The permit (and its concurrency lease)
is held until the response is closed, so a streamed download holds it while it streams.
Callers' explicit limits (`GraphClient.call(..., limits=)`) arrive through a contextvar.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from contextvars import ContextVar

import httpx

from graphworks_core import graph_counts
from graphworks_core.retry_after import parse_retry_after
from ratelimits.base import Limiter, Permit, Reservation, Use

_explicit: ContextVar[Sequence[Use] | None] = ContextVar("graphworks_limit_uses", default=None)
_reserved: ContextVar[Reservation | None] = ContextVar("graphworks_limit_reservation", default=None)


@contextmanager
def declared(uses: Sequence[Use] | None, reservation: Reservation | None = None) -> Iterator[None]:
    """Requests sent inside the block count against `uses` instead of the route table; the
    one `reservation` was made for (Limiter.reserve) goes at its reserved slot."""
    tokens = _explicit.set(uses), _reserved.set(reservation)
    try:
        yield
    finally:
        _explicit.reset(tokens[0])
        _reserved.reset(tokens[1])


def is_throttle(response: httpx.Response) -> bool:
    return response.status_code == 429 or (response.status_code == 503 and "retry-after" in response.headers)


class _ReleasingStream(httpx.AsyncByteStream):
    """The response body; closing it ends the permit."""

    def __init__(self, inner: httpx.AsyncByteStream, permit: AbstractAsyncContextManager[Permit]) -> None:
        self.inner = inner
        self.permit: AbstractAsyncContextManager[Permit] | None = permit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            permit, self.permit = self.permit, None
            if permit is not None:
                await permit.__aexit__(None, None, None)


class LimitedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, limiter: Limiter) -> None:
        self.inner = inner
        self.limiter = limiter

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Content-Length covers bodies streamed from an async iterable (upload fragments) too.
        size = int(request.headers.get("content-length") or 0)
        permit_cm = self.limiter.permit(
            request.method, str(request.url), _explicit.get(), body_bytes=size, reservation=_reserved.get()
        )
        permit = await permit_cm.__aenter__()
        api = graph_counts.api_of(getattr(getattr(permit, "plan", None), "names", ()))  # /metrics, by API
        try:
            response = await self.inner.handle_async_request(request)
            throttle = is_throttle(response)
            graph_counts.record(api, response.status_code, throttled=throttle)
            if throttle:
                await permit.throttled(parse_retry_after(response.headers.get("retry-after")))
        except BaseException as exc:
            if isinstance(exc, httpx.TransportError):  # no response: counted as status class "error"
                graph_counts.record(api, None)
            await permit_cm.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ReleasingStream(response.stream, permit_cm)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
