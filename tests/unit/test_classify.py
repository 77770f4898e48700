"""classify(): every exception and status lands in DESIGN.md's error class; Graph responses become errors."""

from __future__ import annotations

from email.utils import formatdate

import httpx
import pydantic
import pytest

from graphworks_core.errors import (
    CallTimeout,
    ErrorClass,
    GraphHTTPError,
    JobRejected,
    NetworkError,
    UnexpectedGraphReply,
)
from worker.classify import Failure, class_of_status, classify
from worker.graph.responses import (
    error_from_response,
    parse_retry_after,
    reply_json,
    reply_model,
    reply_str,
    unexpected_reply,
)
from worker.policy import DEFAULT_POLICIES, DeadLetter, RetryDecision, decide

GRAPH_URL = "https://graph.microsoft.com/v1.0/users/ops@contoso.com/sendMail"

STATUS_CLASSES = [
    (429, ErrorClass.THROTTLED),
    (500, ErrorClass.UNAVAILABLE),
    (502, ErrorClass.UNAVAILABLE),
    (503, ErrorClass.UNAVAILABLE),
    (504, ErrorClass.UNAVAILABLE),
    (401, ErrorClass.AUTH),
    (403, ErrorClass.AUTH),
    (400, ErrorClass.VALIDATION),
    (404, ErrorClass.VALIDATION),
    (405, ErrorClass.VALIDATION),
    (409, ErrorClass.VALIDATION),
    (413, ErrorClass.VALIDATION),
    (422, ErrorClass.VALIDATION),
    (418, ErrorClass.UNKNOWN),
    (501, ErrorClass.UNKNOWN),
]


@pytest.mark.parametrize(("status", "error_class"), STATUS_CLASSES)
def test_status_classes(status: int, error_class: ErrorClass) -> None:
    assert class_of_status(status) is error_class
    assert classify(GraphHTTPError(status)).error_class is error_class


def test_graph_error_details_are_kept() -> None:
    exc = GraphHTTPError(
        503,
        graph_code="serviceNotAvailable",
        message="try later",
        request_id="rid-1",
        client_request_id="crid-1",
        retry_after_s=2.128,
        method="POST",
        url=GRAPH_URL,
    )
    failure = classify(exc)
    assert failure == Failure(
        ErrorClass.UNAVAILABLE,
        failure.message,
        status=503,
        graph_code="serviceNotAvailable",
        request_id="rid-1",
        client_request_id="crid-1",
        retry_after_s=2.128,
    )
    assert "try later" in failure.message
    assert "serviceNotAvailable" in failure.message


def _validation_error() -> pydantic.ValidationError:
    class Model(pydantic.BaseModel):
        n: int

    try:
        Model.model_validate({"n": "x"})
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("the model accepted a bad value")


@pytest.mark.parametrize(
    ("exc", "error_class"),
    [
        (httpx.ConnectError("connection refused"), ErrorClass.NETWORK),
        (httpx.ReadError("connection reset"), ErrorClass.NETWORK),
        (NetworkError("dns"), ErrorClass.NETWORK),
        (ConnectionResetError("reset by peer"), ErrorClass.NETWORK),
        (httpx.ReadTimeout("read timed out"), ErrorClass.TIMEOUT),
        (TimeoutError(), ErrorClass.TIMEOUT),
        (CallTimeout("30 s passed"), ErrorClass.TIMEOUT),
        (_validation_error(), ErrorClass.VALIDATION),
        (JobRejected("attachment missing"), ErrorClass.VALIDATION),
        (RuntimeError("surprise"), ErrorClass.UNKNOWN),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_exception_classes(exc: BaseException, error_class: ErrorClass) -> None:
    failure = classify(exc)
    assert failure.error_class is error_class
    assert failure.status is None
    assert failure.retry_after_s is None
    assert type(exc).__name__ in failure.message


def test_bearer_token_in_a_message_is_redacted() -> None:
    failure = classify(RuntimeError("call failed with Authorization: Bearer abc.def"))
    assert "abc.def" not in failure.message
    assert "[redacted]" in failure.message


def test_bearer_token_in_a_graph_error_is_redacted() -> None:
    failure = classify(GraphHTTPError(401, graph_code="InvalidAuthenticationToken", message="token Bearer abc.def"))
    assert failure.error_class is ErrorClass.AUTH
    assert "abc.def" not in failure.message
    assert "InvalidAuthenticationToken" in failure.message


# --- Graph responses --------------------------------------------------------------------------


def graph_response(status: int, *, headers: dict[str, str] | None = None, **body: object) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("POST", GRAPH_URL), **body)  # type: ignore[arg-type]


def test_error_from_a_graph_error_body_and_headers() -> None:
    response = graph_response(
        429,
        headers={"request-id": "rid-1", "client-request-id": "crid-1", "Retry-After": "2.128"},
        json={
            "error": {
                "code": "TooManyRequests",
                "message": "Too many requests",
                "innerError": {"request-id": "inner-rid", "date": "2024-01-01T00:00:00"},
            }
        },
    )
    err = error_from_response(response)
    assert err.status == 429
    assert err.graph_code == "TooManyRequests"
    assert err.message == "Too many requests"
    assert err.request_id == "rid-1"
    assert err.client_request_id == "crid-1"
    assert err.retry_after_s == 2.128
    assert (err.method, err.url) == ("POST", GRAPH_URL)


def test_a_throttled_response_is_waited_exactly() -> None:
    err = error_from_response(graph_response(429, headers={"Retry-After": "2.128"}))
    failure = classify(err)
    assert failure.error_class is ErrorClass.THROTTLED
    assert decide(DEFAULT_POLICIES[ErrorClass.THROTTLED], failure, 1, 0.5) == RetryDecision(2.128)


def test_request_id_falls_back_to_the_inner_error() -> None:
    response = graph_response(
        404, json={"error": {"code": "ErrorItemNotFound", "message": "gone", "innerError": {"request-id": "inner"}}}
    )
    assert error_from_response(response).request_id == "inner"


def test_retry_after_as_a_past_http_date_is_zero() -> None:
    response = graph_response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert error_from_response(response).retry_after_s == 0.0


def test_retry_after_as_a_future_http_date_is_positive() -> None:
    response = graph_response(503, headers={"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"})
    retry_after = error_from_response(response).retry_after_s
    assert retry_after is not None
    assert retry_after > 0


def test_empty_body() -> None:
    err = error_from_response(graph_response(503))
    assert (err.status, err.graph_code, err.message, err.request_id, err.retry_after_s) == (503, None, None, None, None)
    assert classify(err).error_class is ErrorClass.UNAVAILABLE


def test_non_json_body_becomes_the_message() -> None:
    err = error_from_response(graph_response(502, text="<html>Bad Gateway</html>"))
    assert (err.status, err.graph_code) == (502, None)
    assert err.message == "<html>Bad Gateway</html>"


def test_long_non_json_body_is_truncated() -> None:
    err = error_from_response(graph_response(500, text="x" * 5000))
    assert err.message == "x" * 500


def test_response_without_a_request() -> None:
    err = error_from_response(httpx.Response(500, json={"error": {"code": "generalException", "message": "m"}}))
    assert (err.graph_code, err.method, err.url) == ("generalException", None, None)


# --- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("2.128", 2.128), ("2.5", 2.5), ("0", 0.0), ("120", 120.0), (" 3 ", 3.0)],
)
def test_retry_after_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value) == seconds


@pytest.mark.parametrize("value", [None, "", "   ", "-1", "soon", "nan"])
def test_retry_after_unusable(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_retry_after_http_date_is_relative_to_now() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 90, usegmt=True), now=now) == 90.0
    assert parse_retry_after(formatdate(now - 90, usegmt=True), now=now) == 0.0


@pytest.mark.parametrize("value", ["inf", "1e400"])
def test_retry_after_infinite_is_refused(value: str) -> None:
    assert parse_retry_after(value) is None


# --- 2xx replies that do not fit -------------------------------------------------------------


class _Item(pydantic.BaseModel):
    id: str


def test_a_2xx_that_does_not_fit_its_model_is_unknown_with_its_cause_not_validation() -> None:
    request = httpx.Request("POST", GRAPH_URL, headers={"Authorization": "Bearer t"})
    response = httpx.Response(202, headers={"request-id": "rid-9"}, json={"nextExpectedRanges": ["0-327679"]},
                              request=request)  # fmt: skip
    with pytest.raises(UnexpectedGraphReply) as info:
        reply_model(_Item, response)
    failure = classify(info.value)
    assert (failure.error_class, failure.cause, failure.status, failure.request_id) == (
        ErrorClass.UNKNOWN, "unexpected_reply", 202, "rid-9")  # fmt: skip
    assert failure.message.startswith(f"unexpected Graph reply: 202 to POST {GRAPH_URL}, which does not fit _Item")
    assert "id: Field required" in failure.message and '{"nextExpectedRanges":["0-327679"]}' in failure.message
    reason = decide(DEFAULT_POLICIES[ErrorClass.UNKNOWN], failure, 3, 0.0)
    assert reason == DeadLetter("unknown (unexpected_reply): still failing after 2 retries")
    assert isinstance(decide(DEFAULT_POLICIES[ErrorClass.UNKNOWN], failure, 1, 0.0), RetryDecision)


def test_the_excerpt_is_short_and_keeps_no_credential() -> None:
    upload = httpx.Request("PUT", "https://sn3302.up.1drv.com/up/fe6987415ace7X4e1eF866337?tempauth=abc")
    body = {"uploadUrl": "https://sn3302.up.1drv.com/up/SECRETPATH?tempauth=xyz", "access_token": "s3cr3t",
            "note": "Bearer abc.def", "pad": "x" * 2000}  # fmt: skip
    exc = unexpected_reply(httpx.Response(200, json=body, request=upload), "which is odd")
    text = str(exc)
    assert "SECRETPATH" not in text and "xyz" not in text and "s3cr3t" not in text and "abc.def" not in text
    assert "fe6987415ace7X4e1eF866337" not in text, "a pre-authenticated URL's path is its credential"
    assert exc.where == "PUT https://sn3302.up.1drv.com/…"
    assert '"uploadUrl":"https://sn3302.up.1drv.com/…"' in exc.excerpt
    assert len(exc.excerpt) <= 301 and exc.excerpt.endswith("…")


def test_bodies_that_are_not_the_json_object_asked_for() -> None:
    with pytest.raises(UnexpectedGraphReply, match="which is not JSON; body: <html>oops</html>"):
        reply_json(graph_response(200, text="<html>oops</html>"))
    with pytest.raises(UnexpectedGraphReply, match="a JSON list, not an object"):
        reply_json(graph_response(200, json=[1]))
    with pytest.raises(UnexpectedGraphReply, match=r"which is not JSON; body: \(empty\)"):
        reply_json(graph_response(201))
    with pytest.raises(UnexpectedGraphReply, match="without the string 'uploadUrl' it should carry"):
        reply_str(graph_response(201, json={"uploadUrl": 7}), "uploadUrl")
    assert reply_str(graph_response(201, json={"uploadUrl": "u"}), "uploadUrl") == "u"
