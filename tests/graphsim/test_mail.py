"""Mail routes: sendMail validates like Exchange and answers 202; messages can be read."""

from __future__ import annotations

import httpx

from graphsim.server import SimServer

USER = "adele@contoso.com"


def _mail(**message: object) -> dict[str, object]:
    return {"message": {"subject": "Hi", "body": {"contentType": "Text", "content": "Hello"}, **message}}


async def test_send_mail_is_accepted_with_an_empty_body(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    payload = _mail(toRecipients=[{"emailAddress": {"address": "bob@contoso.com"}}])

    response = await client.post(f"/users/{USER}/sendMail", json=payload)

    assert response.status_code == 202
    assert response.content == b""
    [sent] = graphsim.state.sent_mail()
    assert sent.user_id == USER
    assert sent.message["subject"] == "Hi"
    assert sent.save_to_sent_items is True
    # saved to Sent Items, so it can be read back
    stored = (await client.get(f"/users/{USER}/messages/{sent.id}")).json()
    assert stored["subject"] == "Hi"
    assert stored["toRecipients"] == [{"emailAddress": {"address": "bob@contoso.com"}}]


async def test_send_mail_accepts_cc_or_bcc_only(client: httpx.AsyncClient) -> None:
    cc = await client.post(
        f"/users/{USER}/sendMail", json=_mail(ccRecipients=[{"emailAddress": {"address": "c@x.io"}}])
    )
    bcc = await client.post(
        f"/users/{USER}/sendMail",
        json={**_mail(bccRecipients=[{"emailAddress": {"address": "b@x.io"}}]), "saveToSentItems": False},
    )

    assert cc.status_code == 202
    assert bcc.status_code == 202


async def test_send_mail_without_recipients_is_invalid_recipients(client: httpx.AsyncClient) -> None:
    for message in (_mail(), _mail(toRecipients=[]), _mail(toRecipients=[{"emailAddress": {"address": ""}}])):
        response = await client.post(f"/users/{USER}/sendMail", json=message)
        assert response.status_code == 400, message
        assert response.json()["error"]["code"] == "ErrorInvalidRecipients"


async def test_send_mail_without_message_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/users/{USER}/sendMail", json={"subject": "no envelope"})

    assert response.status_code == 400
    assert response.json()["error"]["code"]


async def test_send_mail_with_bad_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/users/{USER}/sendMail", content=b"[1,", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


async def test_seeded_mail_message_has_graph_shape(graphsim: SimServer, client: httpx.AsyncClient) -> None:
    message_id = graphsim.state.seed_mail_message(
        USER, {"subject": "Invoice", "body": {"contentType": "html", "content": "<p>pay</p>"}}
    )

    response = await client.get(f"/users/{USER.upper()}/messages/{message_id}")

    assert response.status_code == 200
    message = response.json()
    assert message["id"] == message_id
    assert message["subject"] == "Invoice"
    assert message["body"] == {"contentType": "html", "content": "<p>pay</p>"}
    for field in ("from", "toRecipients", "receivedDateTime", "conversationId", "hasAttachments"):
        assert field in message
    assert message["hasAttachments"] is False


async def test_unknown_mail_message_is_error_item_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/users/{USER}/messages/AAMkADnope")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ErrorItemNotFound"
