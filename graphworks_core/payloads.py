"""One pydantic model per job type: what service code may enqueue, checked before anything is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from graphworks_core.resource_path import parse_message_resource

NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
Address = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", strip_whitespace=True)]

# Graph rejects a chat message whose body is over ~28 KB; measured on the serialized body.
# https://learn.microsoft.com/en-us/microsoftteams/limits-specifications-teams#chat
TEAMS_MAX_BODY_BYTES = 28 * 1024


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def default_ordering_key(self) -> str | None:
        """The ordering key a job of this payload gets when the caller names none (None: unordered)."""
        return None


class TeamsMention(Payload):
    """A mention: the HTML content carries `<at id="{id}">{text}</at>`; Graph needs both to match.
    https://learn.microsoft.com/en-us/graph/api/chatmessage-post#example-2-send-a-message-with-a-mention
    """

    id: int = Field(ge=0)
    text: NonEmpty
    user_id: NonEmpty
    display_name: str | None = None


class TeamsFileReference(Payload):
    """A OneDrive/SharePoint file shared by reference: a driveItem (drive_id + item_id, looked up at
    send time), or its eTag GUID (`id`) with `web_url` and `name` given directly.
    https://learn.microsoft.com/en-us/graph/api/chatmessage-post#example-4-send-a-message-with-file-attachment-in-it
    """

    drive_id: NonEmpty | None = None
    item_id: NonEmpty | None = None
    id: NonEmpty | None = None
    web_url: NonEmpty | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> TeamsFileReference:
        if not ((self.drive_id and self.item_id) or (self.id and self.web_url)):
            raise ValueError("a file reference needs drive_id + item_id, or id (the eTag GUID) + web_url")
        return self


class MailAttachment(Payload):
    """A file attached to a mail, by local path or http(s) URL; never the bytes themselves."""

    path: NonEmpty | None = None
    url: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None
    name: str | None = None
    content_type: str | None = None
    is_inline: bool = False
    content_id: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> MailAttachment:
        if (self.path is None) == (self.url is None):
            raise ValueError("an attachment needs exactly one of path or url")
        return self


class TeamsMessage(Payload):
    """A chat message (chat_id) or a channel message (team_id + channel_id)."""

    chat_id: NonEmpty | None = None
    team_id: NonEmpty | None = None
    channel_id: NonEmpty | None = None
    content: NonEmpty
    content_type: Literal["text", "html"] = "text"
    importance: Literal["normal", "high", "urgent"] = "normal"
    subject: str | None = None
    # The user the message is sent as (delegated token); None: the provider's default sender.
    sender: str | None = None
    mentions: list[TeamsMention] = Field(default_factory=list)
    attachments: list[TeamsFileReference] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_target(self) -> TeamsMessage:
        if self.chat_id and (self.team_id or self.channel_id):
            raise ValueError("give chat_id, or team_id with channel_id, not both")
        if not self.chat_id and not (self.team_id and self.channel_id):
            raise ValueError("chat_id, or team_id with channel_id, is required")
        if self.mentions and self.content_type != "html":
            raise ValueError('mentions need content_type "html" (the content carries <at id="n"> tags)')
        for mention in self.mentions:
            if f'<at id="{mention.id}">' not in self.content:
                raise ValueError(f'mention {mention.id} has no <at id="{mention.id}">...</at> tag in content')
        if len(self.content.encode()) > TEAMS_MAX_BODY_BYTES:
            raise ValueError(f"content is over Teams' {TEAMS_MAX_BODY_BYTES} byte message limit")
        return self

    def default_ordering_key(self) -> str:
        """Messages to one chat (or one channel) are posted one at a time, in the order enqueued."""
        return f"chat:{self.chat_id}" if self.chat_id else f"channel:{self.team_id}:{self.channel_id}"


class Mail(Payload):
    """An Outlook message sent with sendMail from a user or shared mailbox."""

    mailbox: NonEmpty
    to: list[Address] = Field(min_length=1)
    cc: list[Address] = Field(default_factory=list)
    bcc: list[Address] = Field(default_factory=list)
    reply_to: list[Address] = Field(default_factory=list)
    subject: str
    body: str
    body_type: Literal["text", "html"] = "text"
    importance: Literal["low", "normal", "high"] = "normal"
    save_to_sent_items: bool = True
    attachments: list[MailAttachment] = Field(default_factory=list)


class Inbound(Payload):
    """Fetch one message named by a notification's resource, e.g. `users/{id}/messages/{id}`."""

    resource: NonEmpty
    tenant_id: str | None = None
    subscription_id: str | None = None

    @model_validator(mode="after")
    def _names_a_message(self) -> Inbound:
        parse_message_resource(self.resource)  # ValueError says which forms are understood
        return self


class Attachment(Payload):
    """An upload, download or delete of a OneDrive/SharePoint file; files travel by path, never inline."""

    operation: Literal["upload", "download", "delete"]
    drive_id: NonEmpty
    item_path: NonEmpty
    local_path: str | None = None  # upload: the file to send (under ATTACHMENT_SOURCE_DIR when set)
    source_url: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None  # upload: or fetch it here
    conflict_behavior: Literal["replace", "fail", "rename"] = "replace"
    store_key: str | None = None  # download: name in the object store (default: drive_id/item_path)

    @model_validator(mode="after")
    def _source_for_upload(self) -> Attachment:
        if self.operation == "upload" and (self.local_path is None) == (self.source_url is None):
            raise ValueError("an upload needs exactly one of local_path or source_url")
        return self


class Notification(Payload):
    """One change notification or lifecycle event as the webhook receiver accepted it (clientState
    already checked and dropped; never stored)."""

    subscription_id: NonEmpty
    tenant_id: str | None = None
    change_type: str | None = None  # created | updated | deleted
    resource: str | None = None  # e.g. "Users/{id}/Messages/{id}", "chats('{id}')/messages('{id}')"
    resource_data: dict[str, Any] | None = None  # id, @odata.type, @odata.id
    lifecycle_event: Literal["reauthorizationRequired", "subscriptionRemoved", "missed"] | None = None
    subscription_expiration: str | None = None
    # Decrypted resource data of a rich notification (includeResourceData); never logged.
    content: dict[str, Any] | None = None
    # A rich notification's `encryptedContent` as Graph sent it: the notifications processor
    # verifies dataSignature and decrypts it off the receiver's hot path (RSA costs ~1 ms/item),
    # so Redis holds only ciphertext.
    encrypted_content: dict[str, Any] | None = None

    @classmethod
    def from_graph(cls, item: dict[str, Any]) -> Notification:
        """From an item as Graph delivers it (pydantic.ValidationError if it does not fit)."""
        return cls.model_validate({name: item[graph] for graph, name in _GRAPH_FIELDS if graph in item})


# Graph's name of each item field a Notification keeps -> its own (clientState is never kept).
_GRAPH_FIELDS = (
    ("subscriptionId", "subscription_id"),
    ("tenantId", "tenant_id"),
    ("changeType", "change_type"),
    ("resource", "resource"),
    ("resourceData", "resource_data"),
    ("lifecycleEvent", "lifecycle_event"),
    ("subscriptionExpirationDateTime", "subscription_expiration"),
    ("encryptedContent", "encrypted_content"),
)


class NotificationBatch(Payload):
    """The checked items of one webhook delivery as Graph sent them (clientState removed), stored as
    one job: a job per item costs the receiver more than its throughput target allows, and so does
    validating each item there. processors/notification_batch.py validates each item on its own
    (Notification.from_graph) and drops, and counts, one that does not fit."""

    items: list[dict[str, Any]] = Field(min_length=1)


class Sync(Payload):
    """A delta sync of one resource (mail folder, calendar, contacts, drive, channel messages)."""

    resource: Literal["mail", "calendar", "contacts", "drive", "channel_messages"]
    owner: NonEmpty  # the user (mail, calendar, contacts), the drive id (drive) or the team id (channel_messages)
    folder: str | None = None  # mail: the folder id or well-known name; default inbox
    tenant_id: str | None = None
    channel_id: NonEmpty | None = None  # channel_messages: the channel in team `owner`
    start: datetime | None = None  # calendar: the calendarView window, which Graph requires
    end: datetime | None = None
    full: bool = False  # drop the stored delta link and start a full resync

    @model_validator(mode="after")
    def _resource_needs(self) -> Sync:
        if self.resource == "calendar":
            if self.start is None or self.end is None:
                raise ValueError("a calendar sync needs start and end (Graph's calendarView/delta needs a window)")
            if self.start >= self.end:
                raise ValueError("start must be before end")
        if self.resource == "channel_messages" and not self.channel_id:
            raise ValueError("a channel_messages sync needs channel_id (owner is the team id)")
        return self


PAYLOAD_MODELS: dict[str, type[Payload]] = {
    "teams_message": TeamsMessage,
    "mail": Mail,
    "inbound": Inbound,
    "attachment": Attachment,
    "notification": Notification,
    "notification_batch": NotificationBatch,
    "sync": Sync,
}
