"""Outlook mail routes: ``user: sendMail`` and reading a message from a mailbox."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from graphsim import resources
from graphsim.common import json_object, sim_state
from graphsim.errors import GraphError
from graphsim.state import SentMail

_RECIPIENT_FIELDS = ("toRecipients", "ccRecipients", "bccRecipients")


def _invalid_recipients(message: str) -> GraphError:
    return GraphError(400, "ErrorInvalidRecipients", message)


def _recipient_addresses(message: dict[str, Any]) -> list[str]:
    """Every recipient address of `message`, or ErrorInvalidRecipients as Exchange answers."""
    addresses: list[str] = []
    for field in _RECIPIENT_FIELDS:
        recipients = message.get(field, [])
        if recipients is None:
            continue
        if not isinstance(recipients, list):
            raise GraphError(400, "BadRequest", f"Property '{field}' must be a collection of recipients.")
        for recipient in recipients:
            email = recipient.get("emailAddress") if isinstance(recipient, dict) else None
            address = email.get("address") if isinstance(email, dict) else None
            if not isinstance(address, str) or "@" not in address:
                raise _invalid_recipients(
                    f"At least one recipient is not valid., Recipient '{address or ''}' is not resolved. "
                    "All recipients must be resolved before a message can be submitted."
                )
            addresses.append(address)
    if not addresses:
        raise _invalid_recipients("At least one recipient is required, but none were found.")
    return addresses


async def send_mail(request: Request) -> Response:
    """POST /users/{user_id}/sendMail -> 202 with no body."""
    state = sim_state(request)
    user_id = request.path_params["user_id"]
    payload = await json_object(request)
    message = payload.get("message")
    if not isinstance(message, dict):
        raise GraphError(400, "ErrorInvalidParameter", "The value of the parameter 'Message' is empty.")
    save = payload.get("saveToSentItems", True)
    if not isinstance(save, bool):
        raise GraphError(400, "BadRequest", "Property 'saveToSentItems' must be a boolean.")
    _recipient_addresses(message)
    body = message.get("body")
    if body is not None and not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Property 'body' must be an itemBody.")

    message_id = resources.new_mail_id()
    state.add_sent_mail(SentMail(user_id=user_id, message=message, save_to_sent_items=save, id=message_id))
    if save:
        sender = {"emailAddress": {"address": user_id}} if "@" in user_id else resources.SIM_MAIL_SENDER
        sent = {"from": sender, "sender": sender, **message, "isRead": True, "parentFolderId": "SentItems"}
        state.put_mail_message(user_id, resources.mail_message(message_id, sent))
    return Response(status_code=202)


async def get_message(request: Request) -> JSONResponse:
    """GET /users/{user_id}/messages/{message_id}"""
    found = sim_state(request).mail_message(request.path_params["user_id"], request.path_params["message_id"])
    if found is None:
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
    return JSONResponse(found)


def routes() -> list[BaseRoute]:
    """Mail routes, relative to ``/v1.0``."""
    return [
        Route("/users/{user_id}/sendMail", send_mail, methods=["POST"]),
        Route("/users/{user_id}/messages/{message_id}", get_message, methods=["GET"]),
    ]
