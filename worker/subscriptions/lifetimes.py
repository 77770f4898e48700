"""The longest a Graph subscription may live, by resource: the manager asks for exactly this.

From "subscription resource type", section "Subscription lifetime" (maximum length of subscription
per resource type): https://learn.microsoft.com/en-us/graph/api/resources/subscription#subscription-lifetime
Teams resources also need a lifecycleNotificationUrl for an expiration more than 1 hour away:
https://learn.microsoft.com/en-us/graph/teams-changenotifications-chatmessage
"""

from __future__ import annotations

import re

# (pattern on the lower-cased resource path, minutes without resource data, minutes with resource data)
_LIMITS: tuple[tuple[re.Pattern[str], int, int], ...] = (
    (re.compile(r"^(security/)?alerts"), 43_200, 43_200),  # security alert: under 30 days
    (re.compile(r"^communications/callrecords"), 4_230, 4_230),  # Teams callRecord: under 3 days
    (re.compile(r"^communications/presences"), 60, 60),  # Teams presence: 1 hour
    # Teams chatMessage, chat, channel, team, conversationMember: 3 days (with or without resource data)
    (re.compile(r"^(chats|teams|appcatalogs|users/[^/]+/chats)"), 4_320, 4_320),
    (re.compile(r"^groups/[^/]+/(conversations|threads)"), 4_230, 4_230),  # group conversation
    # OneDrive/SharePoint driveItem and list: under 30 days
    (re.compile(r"^(drives/|sites/|(me|users/[^/]+)/drive)"), 42_300, 42_300),
    # Outlook message, event, contact: under 7 days; with resource data 1 day
    (re.compile(r"^(me|users/[^/]+)/(mailfolders|messages|events|contacts|calendar)"), 10_080, 1_440),
    (re.compile(r"^(users|groups)$|^(users|groups)/|^directory"), 41_760, 41_760),  # directory: 29 days
    (re.compile(r"^(me|users/[^/]+)/todo"), 4_230, 4_230),
)
DEFAULT_MAX_MINUTES = 4_230  # the shortest common limit, for resources the table does not name
TEAMS_WITHOUT_LIFECYCLE_MINUTES = 60


def normalise(resource: str) -> str:
    """`/Users('a')/Messages` -> `users/a/messages`: the shape the limit patterns match."""
    path = resource.strip().lstrip("/").lower()
    path = re.sub(r"\('([^']*)'\)", r"/\1", path)
    return path.split("?", 1)[0]


def is_teams(resource: str) -> bool:
    return bool(re.match(r"^(chats|teams|appcatalogs|users/[^/]+/chats)", normalise(resource)))


def max_expiration_minutes(resource: str, *, include_resource_data: bool = False, has_lifecycle_url: bool) -> int:
    """The documented maximum lifetime of a subscription to `resource`, in minutes."""
    path = normalise(resource)
    minutes = DEFAULT_MAX_MINUTES
    for pattern, plain, rich in _LIMITS:
        if pattern.search(path):
            minutes = rich if include_resource_data else plain
            break
    if is_teams(resource) and not has_lifecycle_url:
        minutes = min(minutes, TEAMS_WITHOUT_LIFECYCLE_MINUTES)
    return minutes
