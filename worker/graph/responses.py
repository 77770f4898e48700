"""Turn Graph's raw responses into our errors: status, Graph error code, request ids, Retry-After."""

from __future__ import annotations

import json

import httpx

from graphworks_core.errors import GraphHTTPError
from graphworks_core.retry_after import parse_retry_after


def error_from_response(response: httpx.Response) -> GraphHTTPError:
    code: str | None = None
    message: str | None = None
    inner_request_id: str | None = None
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = err.get("code")
        message = err.get("message")
        inner = err.get("innerError") or err.get("innererror") or {}
        if isinstance(inner, dict):
            inner_request_id = inner.get("request-id")
    elif response.content:
        message = response.text[:500]
    headers = response.headers
    return GraphHTTPError(
        response.status_code,
        graph_code=code,
        message=message,
        request_id=headers.get("request-id") or inner_request_id,
        client_request_id=headers.get("client-request-id"),
        retry_after_s=parse_retry_after(headers.get("retry-after")),
        method=response.request.method if response._request is not None else None,
        url=str(response.request.url) if response._request is not None else None,
    )


def raise_for_status(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    raise error_from_response(response)
