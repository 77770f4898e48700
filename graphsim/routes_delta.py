"""Delta query routes: mail folder messages, calendarView, contacts, drive root, channel messages.

Pages end with `@odata.nextLink` (a `$skiptoken`) until the last, which carries `@odata.deltaLink`
(a `$deltatoken`); page size from `Prefer: odata.maxpagesize=N` or `$top`. An expired token answers
410 Gone with a `Location` header holding a fresh initial delta URL.
https://learn.microsoft.com/en-us/graph/delta-query-overview
https://learn.microsoft.com/en-us/graph/api/message-delta
https://learn.microsoft.com/en-us/graph/api/event-delta (calendarView needs startDateTime/endDateTime)
https://learn.microsoft.com/en-us/graph/api/contact-delta (per folder: /contactFolders/{id}/contacts/delta only)
https://learn.microsoft.com/en-us/graph/api/driveitem-delta (410 resyncChangesApplyDifferences)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from graphsim.common import sim_state
from graphsim.delta_store import DeltaStore, TokenExpired, TokenInvalid, collection_key
from graphsim.errors import GraphError
from graphsim.resources import GRAPH_ROOT

_MAX_PAGE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.IGNORECASE)
_NOT_FOUND = {
    "mail": ("ErrorInvalidUser", "The requested user '{owner}' is invalid."),
    "events": ("ErrorInvalidUser", "The requested user '{owner}' is invalid."),
    "contacts": ("ErrorInvalidUser", "The requested user '{owner}' is invalid."),
    "drive": ("itemNotFound", "The resource could not be found."),
    "channel": ("NotFound", "Channel not found: {owner}."),
}
_EXPIRED = {
    "drive": ("resyncChangesApplyDifferences", "Resync required. Replace any local items with the server's version."),
}
_DEFAULT_EXPIRED = ("syncStateNotFound", "The sync state generation was not found or has expired.")
_CONTEXT = {"mail": "messages", "events": "events", "contacts": "contacts", "drive": "driveItems",
            "channel": "chatMessages"}  # fmt: skip


def _page_size(request: Request) -> int | None:
    found = _MAX_PAGE.search(request.headers.get("prefer", ""))
    value = found.group(1) if found else request.query_params.get("$top")
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise GraphError(400, "BadRequest", f"Invalid page size '{value}'.")
    return min(int(value), 1000)


def _base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{request.url.path}"


def _parse_time(value: str) -> datetime:
    """An ISO time as naive UTC; Graph writes `dateTime` with 7 fractional digits and a separate zone."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise GraphError(400, "ErrorInvalidParameter", f"Invalid date/time value '{value}'.") from exc
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _in_window(window: tuple[str, str]) -> Callable[[dict[str, Any]], bool]:
    """Events overlapping the window (calendarView semantics); times are taken as UTC."""
    start, end = _parse_time(window[0]), _parse_time(window[1])

    def keep(item: dict[str, Any]) -> bool:
        try:
            s, e = _parse_time(str(item["start"]["dateTime"])), _parse_time(str(item["end"]["dateTime"]))
        except (KeyError, TypeError, GraphError):
            return True
        return s < end and e > start

    return keep


async def _delta(request: Request, kind: str, key: str, owner: str) -> JSONResponse:
    store: DeltaStore = sim_state(request).delta
    if not store.exists(key):
        code, message = _NOT_FOUND[kind]
        raise GraphError(404, code, message.format(owner=owner))
    query, size, base = request.query_params, _page_size(request), _base_url(request)
    try:
        if "$skiptoken" in query:
            cursor = store.resume(key, query["$skiptoken"], delta=False, size=size)
        elif "$deltatoken" in query:
            cursor = store.resume(key, query["$deltatoken"], delta=True, size=size)
        else:
            window = None
            if kind == "events":
                start, end = query.get("startDateTime"), query.get("endDateTime")
                if not start or not end:
                    raise GraphError(400, "ErrorInvalidParameter", "This request requires a time window specified "
                                     "by the query string parameters StartDateTime and EndDateTime.")  # fmt: skip
                window = (start, end)
            cursor = store.start(key, size, window)
    except TokenExpired as exc:
        code, message = _EXPIRED.get(kind, _DEFAULT_EXPIRED)
        keep_query = {k: v for k, v in query.items() if k in ("startDateTime", "endDateTime")}
        location = base + ("?" + urlencode(keep_query) if keep_query else "")
        raise GraphError(410, code, message, headers={"Location": location}) from exc
    except TokenInvalid as exc:
        raise GraphError(400, "BadRequest", f"Invalid state token: {exc}.") from exc
    page = store.page(cursor, _in_window(cursor.window) if cursor.window else None)
    body: dict[str, Any] = {"@odata.context": f"{GRAPH_ROOT}/$metadata#Collection({_CONTEXT[kind]})",
                            "value": page.items}  # fmt: skip
    if page.next_cursor is not None:
        body["@odata.nextLink"] = f"{base}?$skiptoken={quote(store.skip_token(page.next_cursor), safe='')}"
    else:
        body["@odata.deltaLink"] = f"{base}?$deltatoken={quote(store.delta_token(cursor), safe='')}"
    headers = {"Preference-Applied": f"odata.maxpagesize={cursor.size}"} if size else {}
    return JSONResponse(body, headers=headers)


async def mail_delta(request: Request) -> JSONResponse:
    """GET /users/{user_id}/mailFolders/{folder_id}/messages/delta"""
    user, folder = request.path_params["user_id"], request.path_params["folder_id"]
    return await _delta(request, "mail", collection_key("mail", user, folder), user)


async def calendar_delta(request: Request) -> JSONResponse:
    """GET /users/{user_id}/calendarView/delta?startDateTime=..&endDateTime=.."""
    user = request.path_params["user_id"]
    return await _delta(request, "events", collection_key("events", user), user)


async def contacts_delta(request: Request) -> JSONResponse:
    """GET /users/{user_id}/contactFolders/{folder_id}/contacts/delta (contact delta is per folder)"""
    user, folder = request.path_params["user_id"], request.path_params["folder_id"]
    return await _delta(request, "contacts", collection_key("contacts", user, folder), user)


async def undocumented_contacts_delta(request: Request) -> JSONResponse:
    """GET /users/{user_id}/contacts/delta: not a documented path; graphsim refuses it."""
    raise GraphError(400, "BadRequest", "Contact delta is documented per folder only: "
                     "GET /users/{id}/contactFolders/{id}/contacts/delta.")  # fmt: skip


async def drive_delta(request: Request) -> JSONResponse:
    """GET /drives/{drive_id}/root/delta"""
    drive = request.path_params["drive_id"]
    return await _delta(request, "drive", collection_key("drive", drive), drive)


async def channel_delta(request: Request) -> JSONResponse:
    """GET /teams/{team_id}/channels/{channel_id}/messages/delta"""
    team, channel = request.path_params["team_id"], request.path_params["channel_id"]
    return await _delta(request, "channel", collection_key("channel", team, channel), f"{team}/{channel}")


def routes() -> list[BaseRoute]:
    """Delta routes, relative to ``/v1.0``; ``delta()`` (the SDKs' spelling) works too."""
    paths = [
        ("/users/{user_id}/mailFolders/{folder_id}/messages/", mail_delta),
        ("/users/{user_id}/calendarView/", calendar_delta),
        ("/users/{user_id}/contactFolders/{folder_id}/contacts/", contacts_delta),
        ("/users/{user_id}/contacts/", undocumented_contacts_delta),
        ("/drives/{drive_id}/root/", drive_delta),
        ("/teams/{team_id}/channels/{channel_id}/messages/", channel_delta),
    ]
    return [Route(p + suffix, fn, methods=["GET"]) for p, fn in paths for suffix in ("delta", "delta()")]
