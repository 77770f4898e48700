"""Turn Graph's raw responses into our errors (status, Graph error code, request ids, Retry-After),
and read 2xx bodies into our models: a body that does not fit is `UnexpectedGraphReply`, never a
pydantic error (which the runner would take for an invalid payload of ours)."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import httpx
import pydantic

from graphworks_core.errors import GraphHTTPError, UnexpectedGraphReply
from graphworks_core.redact import redact_text
from graphworks_core.retry_after import parse_retry_after

M = TypeVar("M", bound=pydantic.BaseModel)

EXCERPT_CHARS = 300
# Upload and download URLs are pre-authenticated (the URL is the credential): keep only their host.
_URL = re.compile(r"(https?://[^/\s\"'?#]+)[^\s\"']*")


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


def reply_excerpt(response: httpx.Response) -> str:
    """The start of a body, fit for a log or a dead-letter entry: URLs cut to their host, secrets masked."""
    raw = response.content[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    text = redact_text(_URL.sub(lambda m: f"{m.group(1)}/…", raw))
    cut = len(text) > EXCERPT_CHARS or len(response.content) > EXCERPT_CHARS * 4
    return text[:EXCERPT_CHARS] + ("…" if cut else "")


def unexpected_reply(response: httpx.Response, problem: str) -> UnexpectedGraphReply:
    """The error for a 2xx `response` we cannot use, saying why (`problem`) and what came back."""
    where = None
    if response._request is not None:  # httpx raises on .request when a response has none
        request = response._request
        url = request.url
        # A request without our bearer token went to a pre-authenticated URL: its path is the credential.
        path = url.path if "authorization" in request.headers else "/…"
        where = f"{request.method} {url.scheme}://{url.netloc.decode()}{path}"
    headers = response.headers
    return UnexpectedGraphReply(
        response.status_code,
        problem,
        excerpt=reply_excerpt(response),
        request_id=headers.get("request-id"),
        client_request_id=headers.get("client-request-id"),
        where=where,
    )


def _problems(exc: pydantic.ValidationError) -> str:
    shown = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:3]]
    more = exc.error_count() - len(shown)
    return "; ".join(shown) + (f" (+{more} more)" if more > 0 else "")


def reply_model(model: type[M], response: httpx.Response) -> M:
    """A 2xx body as `model`, or UnexpectedGraphReply naming what did not fit."""
    try:
        return model.model_validate_json(response.content)
    except pydantic.ValidationError as exc:
        raise unexpected_reply(response, f"which does not fit {model.__name__} ({_problems(exc)})") from exc


def reply_json(response: httpx.Response) -> dict[str, Any]:
    """A 2xx body that must be a JSON object, or UnexpectedGraphReply."""
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise unexpected_reply(response, "which is not JSON") from exc
    if not isinstance(body, dict):
        raise unexpected_reply(response, f"a JSON {type(body).__name__}, not an object")
    return body


def reply_str(response: httpx.Response, field: str) -> str:
    """One string member of a 2xx JSON object (an id, an uploadUrl), or UnexpectedGraphReply."""
    value = reply_json(response).get(field)
    if not isinstance(value, str) or not value:
        raise unexpected_reply(response, f"without the string {field!r} it should carry")
    return value
