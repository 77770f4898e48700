"""Graph's own limits on a subscription's expirationDateTime, as graphsim enforces them.

Written from the documentation, not shared with the product's table (worker/subscriptions/
lifetimes.py): if the product asked for a lifetime Graph refuses, graphsim must refuse it too.
Source: "subscription resource type", section "Subscription lifetime",
https://learn.microsoft.com/en-us/graph/api/resources/subscription#subscription-lifetime
"""

from __future__ import annotations

from urllib.parse import unquote

# Resource kind -> maximum minutes (without resource data, with resource data).
MAX_MINUTES: dict[str, tuple[int, int]] = {
    "security_alert": (43_200, 43_200),
    "call_record": (4_230, 4_230),
    "presence": (60, 60),
    "teams": (4_320, 4_320),  # chatMessage, chat, channel, team, conversationMember
    "group_conversation": (4_230, 4_230),
    "drive_or_list": (42_300, 42_300),
    "outlook": (10_080, 1_440),  # message, event, contact
    "directory": (41_760, 41_760),  # user, group, other directory resources
    "todo": (4_230, 4_230),
}
OTHER_MINUTES = 4_230
# Teams resources without a lifecycleNotificationUrl may not outlive one hour.
TEAMS_NO_LIFECYCLE_MINUTES = 60


def _segments(resource: str) -> list[str]:
    path = unquote(resource).strip().strip("/").split("?")[0].lower()
    # Users('a')/Messages -> users/a/messages
    path = path.replace("('", "/").replace("')", "")
    return [s for s in path.split("/") if s]


def kind(resource: str) -> str | None:
    s = _segments(resource)
    if not s:
        return None
    head = s[0]
    owner_rest = s[2:] if head == "users" else s[1:] if head == "me" else []
    if head in ("alerts", "security"):
        return "security_alert"
    if head == "communications" and len(s) > 1:
        return {"callrecords": "call_record", "presences": "presence"}.get(s[1])
    if head in ("chats", "teams", "appcatalogs") or (owner_rest[:1] == ["chats"]):
        return "teams"
    if head == "groups" and len(s) > 2 and s[2] in ("conversations", "threads"):
        return "group_conversation"
    if head in ("drives", "sites") or owner_rest[:1] == ["drive"]:
        return "drive_or_list"
    if owner_rest[:1] and owner_rest[0] in ("messages", "mailfolders", "events", "calendar", "contacts"):
        return "outlook"
    if owner_rest[:1] == ["todo"]:
        return "todo"
    if head in ("users", "groups", "directory"):
        return "directory"
    return None


def is_teams(resource: str) -> bool:
    return kind(resource) == "teams"


def max_minutes(resource: str, *, rich: bool, lifecycle: bool) -> int:
    limits = MAX_MINUTES.get(kind(resource) or "")
    minutes = OTHER_MINUTES if limits is None else limits[1 if rich else 0]
    if is_teams(resource) and not lifecycle:
        minutes = min(minutes, TEAMS_NO_LIFECYCLE_MINUTES)
    return minutes
