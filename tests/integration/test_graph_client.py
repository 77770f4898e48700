"""The Graph call path over real HTTP: the SDK's RetryHandler is off, errors carry Graph's details."""

from __future__ import annotations

import pytest

from graphsim.faults import Fault
from graphsim.server import SimServer
from graphworks_core.errors import GraphHTTPError
from worker.graph.auth import StaticTokenProvider
from worker.graph.client import GraphClient


@pytest.mark.parametrize("status", [429, 503, 504])
async def test_sdk_does_not_retry_and_fractional_retry_after_is_kept(graphsim: SimServer, status: int) -> None:
    graphsim.state.add_fault(Fault(method="POST", path="/chats/*/messages", status=status, retry_after="2.128"))
    client = GraphClient(graphsim.base_url, StaticTokenProvider("t"))
    try:
        with pytest.raises(GraphHTTPError) as caught:
            await client.call(
                "POST", client.sdk.chats.by_chat_id("19:x").messages, json_body={"body": {"content": "x"}}
            )
    finally:
        await client.close()
    assert len(graphsim.state.requests()) == 1, "msgraph-sdk retried on its own"
    err = caught.value
    assert (err.status, err.retry_after_s) == (status, 2.128)
    assert err.request_id == graphsim.state.requests()[0].request_id


async def test_paths_have_no_double_slash_and_carry_the_token(graphsim: SimServer) -> None:
    client = GraphClient(graphsim.base_url + "/", StaticTokenProvider("tok"))
    try:
        body = {"message": {"toRecipients": [{"emailAddress": {"address": "a@b.c"}}]}}
        response = await client.call("POST", client.sdk.users.by_user_id("u1").send_mail, json_body=body)
    finally:
        await client.close()
    assert response.status_code == 202
    (req,) = graphsim.state.requests()
    assert req.path == "/users/u1/sendMail" and req.headers["authorization"] == "Bearer tok"
