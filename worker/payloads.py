"""One pydantic model per job type: what service code may enqueue, checked before anything is stored."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
Address = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", strip_whitespace=True)]

# Graph rejects a chat message whose body is over ~28 KB; measured on the serialized body.
# https://learn.microsoft.com/en-us/microsoftteams/limits-specifications-teams#chat
TEAMS_MAX_BODY_BYTES = 28 * 1024


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    @model_validator(mode="after")
    def _one_target(self) -> TeamsMessage:
        if self.chat_id and (self.team_id or self.channel_id):
            raise ValueError("give chat_id, or team_id with channel_id, not both")
        if not self.chat_id and not (self.team_id and self.channel_id):
            raise ValueError("chat_id, or team_id with channel_id, is required")
        if len(self.content.encode()) > TEAMS_MAX_BODY_BYTES:
            raise ValueError(f"content is over Teams' {TEAMS_MAX_BODY_BYTES} byte message limit")
        return self


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


class Inbound(Payload):
    """Fetch one message named by a notification's resource, e.g. `users/{id}/messages/{id}`."""

    resource: NonEmpty
    tenant_id: str | None = None
    subscription_id: str | None = None


class Attachment(Payload):
    """An upload, download or delete of a OneDrive/SharePoint file; files travel by path, never inline."""

    operation: Literal["upload", "download", "delete"]
    drive_id: NonEmpty
    item_path: NonEmpty
    local_path: str | None = None


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


class Sync(Payload):
    """A delta sync of one resource (mail folder, calendar, contacts, drive, channel messages)."""

    resource: Literal["mail", "calendar", "contacts", "drive", "channel_messages"]
    owner: NonEmpty
    folder: str | None = None
    tenant_id: str | None = None


PAYLOAD_MODELS: dict[str, type[Payload]] = {
    "teams_message": TeamsMessage,
    "mail": Mail,
    "inbound": Inbound,
    "attachment": Attachment,
    "notification": Notification,
    "sync": Sync,
}
