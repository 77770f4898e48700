"""Job types: name -> payload model, processor, and the rate-limit API/scope its calls use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from processors import attachments, inbound, notifications, outlook_outbound, sync, teams_outbound
from worker.context import JobContext
from worker.payloads import PAYLOAD_MODELS, Mail, Payload, TeamsMessage


@dataclass(frozen=True)
class JobType:
    name: str
    model: type[Payload]
    run: Callable[[JobContext, Any], Awaitable[BaseModel | None]]
    api: str
    scope: Callable[[Any], str]


def _job(
    name: str, run: Callable[[JobContext, Any], Awaitable[BaseModel | None]], api: str, scope: Callable[[Any], str]
) -> JobType:
    return JobType(name, PAYLOAD_MODELS[name], run, api, scope)


JOB_TYPES: dict[str, JobType] = {
    "teams_message": _job("teams_message", teams_outbound.send_teams_message, "teams", teams_outbound.limit_scope),
    "mail": _job("mail", outlook_outbound.send_mail, "outlook", outlook_outbound.limit_scope),
    "attachment": _job("attachment", attachments.run_attachment, "files", attachments.limit_scope),
    "notification": _job("notification", notifications.handle_notification, "subscriptions", notifications.limit_scope),
    # The GraphClient limits their calls by path; these scopes only name the job (see each limit_scope).
    "inbound": _job("inbound", inbound.fetch_inbound, "inbound", inbound.limit_scope),
    "sync": _job("sync", sync.run_sync, "sync", sync.limit_scope),
}

__all__ = ["JOB_TYPES", "JobType", "Mail", "TeamsMessage"]
