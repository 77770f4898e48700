"""Job types: name -> payload model and processor.

Which rate limits a job's Graph requests count against is not declared here: the limiter resolves
it per request from ratelimits/routes.py (or from `limits=` a processor passes to the call).
"""

from __future__ import annotations

from graphworks_core.payloads import PAYLOAD_MODELS
from processors import attachment, inbound, mail, notification, notification_batch, sync, teams_message
from worker.job_type import JobType, Processor


def _job(name: str, run: Processor) -> JobType:
    return JobType(name, PAYLOAD_MODELS[name], run)


JOB_TYPES: dict[str, JobType] = {
    "teams_message": _job("teams_message", teams_message.send_teams_message),
    "mail": _job("mail", mail.send_mail),
    "attachment": _job("attachment", attachment.run_attachment),
    "notification": _job("notification", notification.handle_notification),
    "notification_batch": _job("notification_batch", notification_batch.handle_notification_batch),
    "inbound": _job("inbound", inbound.fetch_inbound),
    "sync": _job("sync", sync.run_sync),
}

__all__ = ["JOB_TYPES", "JobType"]
