"""Which limits a Graph request counts against, from its method and path: a table, first match wins.

Patterns are paths below the version segment (`/v1.0`); `{name}` matches one segment and
captures it, a trailing `/**` matches the path itself or anything below it. Every request also
counts against `global`. Callers whose URL does not say enough (an upload session's
pre-authenticated URL, a chunk's bytes) pass explicit `Use`s instead.
Sources: https://learn.microsoft.com/en-us/graph/throttling-limits (Outlook service limits are
per app and mailbox; Teams per app per tenant, and per chat or channel for posts).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from urllib.parse import unquote, urlsplit

from ratelimits.use import Use

_CHAT_POST = (("teams.chat_post", ""), ("teams.chat", "{chat}"))
_CHANNEL_POST = (("teams.channel_post", ""), ("teams.channel", "{team}:{channel}"))
_TEAMS_GET = (("teams.get", ""),)
_TEAMS_OTHER = (("teams.other", ""),)
_FILES = (("files", ""),)
_MAIL = (("outlook", "{mailbox}"),)
# Mailbox-backed resources under /users/{id}: what Outlook's per-mailbox limits cover.
_OUTLOOK_SEGMENTS = ("messages", "mailFolders", "sendMail", "events", "calendar", "calendars", "calendarView",
                     "contacts", "contactFolders", "mailboxSettings", "outlook", "inferenceClassification")  # fmt: skip

ROUTES: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("POST", "/chats/{chat}/messages", _CHAT_POST),
    ("POST", "/teams/{team}/channels/{channel}/messages", _CHANNEL_POST),
    ("POST", "/teams/{team}/channels/{channel}/messages/{message}/replies", _CHANNEL_POST),
    ("GET", "/chats/{chat}/messages/**", _TEAMS_GET),
    ("GET", "/teams/{team}/channels/{channel}/messages/**", _TEAMS_GET),
    ("*", "/chats/**", _TEAMS_OTHER),
    ("*", "/teams/**", _TEAMS_OTHER),
    ("*", "/users/{user}/drive/**", _FILES),
    ("*", "/users/{user}/drives/**", _FILES),
    ("*", "/groups/{group}/drive/**", _FILES),
    ("*", "/drives/**", _FILES),
    ("*", "/sites/**", _FILES),
    ("*", "/shares/**", _FILES),
    *(("*", f"/users/{{mailbox}}/{segment}/**", _MAIL) for segment in _OUTLOOK_SEGMENTS),
    ("*", "/subscriptions/**", ()),
)


@dataclass(frozen=True)
class _Route:
    method: str
    regex: re.Pattern[str]
    uses: tuple[tuple[str, str], ...]


def _compile(pattern: str) -> re.Pattern[str]:
    tail = pattern.endswith("/**")
    body = pattern[:-3] if tail else pattern
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(body))
    return re.compile(f"^{regex}{'(?:/.*)?' if tail else ''}/?$")


@cache
def _routes() -> tuple[_Route, ...]:
    return tuple(_Route(m, _compile(p), u) for m, p, u in ROUTES)


def graph_path(url: str, base_url: str) -> str:
    """The path below the version segment, percent-decoded: `/chats/19:abc/messages`."""
    path = urlsplit(url).path
    base_path = urlsplit(base_url).path.rstrip("/")
    if base_path and (path == base_path or path.startswith(base_path + "/")):
        path = path[len(base_path) :]
    elif re.match(r"^/(v1\.0|beta)(/|$)", path):
        path = path.split("/", 2)[2] if path.count("/") > 1 else ""
        path = "/" + path
    return unquote(path) or "/"


def resolve(method: str, path: str) -> list[Use]:
    """The Uses of a request by the route table (global is added by the limiter)."""
    method = method.upper()
    for route in _routes():
        if route.method not in ("*", method):
            continue
        found = route.regex.match(path)
        if found is None:
            continue
        groups = found.groupdict()
        return [Use(api, scope.format(**groups)) for api, scope in route.uses]
    return []


def with_upload(uses: Sequence[Use], upload_bytes: int) -> list[Use]:
    """The same uses with `upload_bytes` charged to each (only APIs with a byte budget spend it)."""
    return [Use(u.api, u.scope, upload_bytes) for u in uses]
