"""Job types: name -> payload model and processor.

Which rate limits a job's Graph requests count against is not declared here: the limiter resolves
it per request from ratelimits/routes.py (or from `limits=` a processor passes to the call).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from processors import attachments, inbound, notification_batch, notifications, outlook_outbound, sync, teams_outbound
from worker.context import JobContext
from worker.payloads import PAYLOAD_MODELS, Payload

Processor = Callable[[JobContext, Any], Awaitable[BaseModel | None]]


@dataclass(frozen=True)
class JobType:
    name: str
    model: type[Payload]
    run: Processor


def _job(name: str, run: Processor) -> JobType:
    return JobType(name, PAYLOAD_MODELS[name], run)


JOB_TYPES: dict[str, JobType] = {
    "teams_message": _job("teams_message", teams_outbound.send_teams_message),
    "mail": _job("mail", outlook_outbound.send_mail),
    "attachment": _job("attachment", attachments.run_attachment),
    "notification": _job("notification", notifications.handle_notification),
    "notification_batch": _job("notification_batch", notification_batch.handle_notification_batch),
    "inbound": _job("inbound", inbound.fetch_inbound),
    "sync": _job("sync", sync.run_sync),
}

__all__ = ["JOB_TYPES", "JobType"]
