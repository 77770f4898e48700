"""hypothesis against the webhook receiver (webhooks/app.py), in-process over httpx's ASGI transport on
a real Redis: arbitrary bytes and JSON, notification collections mixing good, forged and malformed
items, lifecycle events, rich items with good and bad validationTokens, documents over the size limit
(framed by Content-Length or chunked) and nested past the parser's depth, odd content types, methods,
paths and validationToken query strings.

For every request: no exception escapes the app, the status is one DESIGN.md documents for it (200
handshake, 202, 400, 404, 405, 413, 415; 503 only while Redis is down, which the second test
arranges), and Redis holds exactly the items that must be kept: none from a delivery refused as a
whole, none of an unknown subscription, another tenant, a wrong clientState or a rich item without
valid tokens, and never a clientState. GRAPHWORKS_FUZZ_RECEIVER_EXAMPLES sets max_examples (the chaos
script's `fuzz` case runs far more).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus

import httpx
import pydantic_core
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from graphsim.server import SimServer
from graphworks.embedded_redis import free_port
from graphworks_core import keys
from graphworks_core.envelope import PRIORITY_DEFAULT
from graphworks_core.settings import Settings, load_settings
from tests.api.conftest import with_db
from tests.webhooks.helpers import TENANT, queued, register
from webhooks.app import LIFECYCLE_PATH, NOTIFY_PATH, ReceiverApp
from webhooks.tokens import TokenValidator
from worker.subscriptions.jobs import LIFECYCLE_PRIORITY, job

OWN_DB = 12  # this module's database on the session's Redis (tests/api use 3 and 7, the API fuzz 11)
EXAMPLES = int(os.environ.get("GRAPHWORKS_FUZZ_RECEIVER_EXAMPLES", "150"))
CLIENT_ID = "graphworks-test-client"  # graphsim signs validation tokens for this audience
LIMIT = 64 * 1024  # a small body limit: documents over it are quick to build and send
TOKEN_MAX = 256
DEPTH_MAX = 200  # pydantic_core's JSON parser refuses deeper nesting (its recursion limit): a 400
# Fixed secrets: the receiver caches records for a few seconds, and every example re-registers these.
SUBS: dict[str, tuple[str, str | None]] = {
    "sub-mail": ("s" * 100 + "mail-secret-0001", TENANT),
    "sub-any-tenant": ("any-tenant-secret-" + "x" * 40, None),
}
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@dataclass
class Request:
    method: str
    path: str
    query: str
    content_type: str | None
    body: bytes
    chunked: bool = False


@dataclass
class Harness:
    """One receiver for the module, run in one event loop; its Redis database is emptied per example."""

    runner: asyncio.Runner
    app: ReceiverApp
    redis: aioredis.Redis
    settings: Settings
    valid_token: str

    def real(self, req: Request) -> Request:
        """`req` with graphsim's signed validation tokens in place of the stand-ins."""
        body = req.body.replace(VALID_STANDIN.encode(), self.valid_token.encode())
        return Request(req.method, req.path, req.query, req.content_type, body, req.chunked)

    def send(self, req: Request) -> httpx.Response:
        return self.runner.run(self._send(req))

    async def _send(self, req: Request) -> httpx.Response:
        headers = {} if req.content_type is None else {"Content-Type": req.content_type}
        transport = httpx.ASGITransport(app=self.app)  # raises whatever escapes the app
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as http:
            content: bytes | AsyncIterator[bytes] = _pieces(req.body) if req.chunked else req.body
            return await http.request(req.method, req.path + req.query, content=content, headers=headers)

    def reset(self) -> None:
        async def go() -> None:
            await self.redis.flushdb()
            for sub_id, (secret, tenant) in SUBS.items():
                await register(self.redis, sub_id, tenant_id=tenant, secret=secret)

        self.runner.run(go())

    def stored(self) -> list[tuple[int, list[dict[str, Any]]]]:
        """(priority, items) of every job in Redis; each must be a notification_batch."""

        async def go() -> list[tuple[int, list[dict[str, Any]]]]:
            assert await self.redis.zcard(keys.scheduled()) == 0
            jobs = await queued(self.redis)
            assert all(j.type == "notification_batch" for j in jobs), [j.type for j in jobs]
            return [(j.priority, j.payload["items"]) for j in jobs]

        return self.runner.run(go())

    def other_keys(self) -> set[bytes]:
        """Keys beyond the subscriptions registered and the receiver's counters: what a delivery wrote."""
        ours = {keys.subscription(i).encode() for i in SUBS} | {
            keys.SUBSCRIPTIONS.encode(),
            keys.WEBHOOK_COUNTERS.encode(),
        }

        async def go() -> set[bytes]:
            return {k async for k in self.redis.scan_iter(count=1000)} - ours

        return self.runner.run(go())


async def _pieces(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 16 * 1024):
        yield body[start : start + 16 * 1024]
    if not body:
        yield b""


def _settings(redis_url: str, sim: SimServer) -> Settings:
    return load_settings(
        redis_url=redis_url,
        graph_client_id=CLIENT_ID,
        graph_tenant_id=None,
        webhook_jwks_url=f"{sim.root_url}/_sim/jwks",
        webhook_max_body_bytes=LIMIT,
        webhook_validation_token_max_chars=TOKEN_MAX,
    )


@contextlib.contextmanager
def _receiving(config: Settings, valid: str) -> Iterator[Harness]:
    """A receiver for `config` with its own event loop, and a Redis client on the same database."""
    with asyncio.Runner() as runner:

        async def build() -> tuple[ReceiverApp, aioredis.Redis]:
            tokens = TokenValidator(config.webhook_jwks_url, CLIENT_ID)
            return ReceiverApp(config, tokens=tokens), aioredis.Redis.from_url(str(config.redis_url))

        app, client = runner.run(build())
        try:
            yield Harness(runner, app, client, config, valid)
        finally:
            runner.run(app.aclose())
            runner.run(client.aclose())


@pytest.fixture(scope="module")
def harness(redis_url: str, graphsim_server: SimServer) -> Iterator[Harness]:
    url = with_db(redis_url, OWN_DB)
    valid = graphsim_server.state.subscriptions.validation_token(audience=CLIENT_ID)
    with _receiving(_settings(url, graphsim_server), valid) as h:
        try:
            yield h
        finally:
            h.runner.run(h.redis.flushdb())


# -- what is sent --------------------------------------------------------------------------------

# Graph's signed tokens exist only once graphsim runs: the strategies place these, each request swaps them in.
VALID_STANDIN = "valid-token-standin"

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
NOT_TEXT = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ENCRYPTED = st.fixed_dictionaries(
    {"data": st.text(max_size=40), "dataKey": st.text(max_size=20), "dataSignature": st.text(max_size=20),
     "encryptionCertificateId": st.text(max_size=10)}
)  # fmt: skip


@st.composite
def items(draw: st.DrawFn) -> Any:
    """One element of `value`: often a notification of a registered subscription, sometimes forged."""
    kind = draw(st.sampled_from(["good", "good", "good", "lifecycle", "rich", "wrong-state", "unknown-sub",
                                 "wrong-tenant", "no-sub-id", "not-an-object", "unhashable"]))  # fmt: skip
    if kind == "not-an-object":
        return draw(JSON_LEAVES | st.lists(JSON_LEAVES, max_size=3))
    sub_id = draw(st.sampled_from(sorted(SUBS)))
    secret, tenant = SUBS[sub_id]
    item: dict[str, Any] = {
        "subscriptionId": sub_id,
        "clientState": secret,
        "changeType": draw(st.sampled_from(["created", "updated", "deleted"])),
        "resource": f"Users/u-1/Messages/{draw(st.text(max_size=12))}",
        "resourceData": {"id": draw(st.text(max_size=12)), "@odata.type": "#Microsoft.Graph.Message"},
        "tenantId": draw(st.sampled_from([TENANT, TENANT.upper()])) if tenant else draw(st.none() | st.text()),
    }
    item.update(draw(st.dictionaries(st.text(max_size=10), JSON, max_size=3)))  # odd extra fields
    item["subscriptionId"], item["clientState"] = sub_id, secret
    if kind == "lifecycle":
        item["lifecycleEvent"] = draw(st.sampled_from(["reauthorizationRequired", "subscriptionRemoved", "missed"]))
    elif kind == "rich":
        item["encryptedContent"] = draw(ENCRYPTED)
    elif kind == "wrong-state":
        item["clientState"] = draw(st.none() | st.text(max_size=200) | st.integers() | st.just(secret + "x"))
    elif kind == "unknown-sub":
        item["subscriptionId"] = draw(st.text(max_size=20).filter(lambda s: s not in SUBS))
    elif kind == "wrong-tenant":
        item["tenantId"] = draw(st.none() | st.integers() | st.text(max_size=40).filter(lambda t: t.lower() != TENANT))
        if tenant is None:
            item["subscriptionId"] = "sub-mail"
            item["clientState"] = SUBS["sub-mail"][0]
    elif kind == "no-sub-id":
        item.pop("subscriptionId")
        if draw(st.booleans()):
            item["subscriptionId"] = draw(NOT_TEXT | st.lists(JSON_LEAVES, max_size=2))
    elif kind == "unhashable":
        item[draw(st.sampled_from(["tenantId", "clientState"]))] = draw(st.lists(JSON_LEAVES, max_size=2))
    return item


@st.composite
def collections(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = {"value": draw(st.lists(items(), max_size=8))}
    tokens = draw(st.sampled_from(["absent", "valid", "bad", "mixed", "not-strings", "null"]))
    if tokens == "valid":
        doc["validationTokens"] = [VALID_STANDIN]
    elif tokens == "bad":
        doc["validationTokens"] = draw(st.lists(st.text(max_size=30) | st.just("a.b.c"), min_size=1, max_size=2))
    elif tokens == "mixed":
        doc["validationTokens"] = [VALID_STANDIN, draw(st.text(max_size=30))]
    elif tokens == "not-strings":
        doc["validationTokens"] = draw(st.lists(NOT_TEXT, min_size=1) | NOT_TEXT)
    elif tokens == "null":
        doc["validationTokens"] = None
    if draw(st.booleans()):
        doc.update(draw(st.dictionaries(st.text(max_size=10).filter(lambda k: k not in doc), JSON, max_size=2)))
    return json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    shape = draw(st.sampled_from(["collection", "collection", "collection", "json", "bytes", "huge", "deep"]))
    if shape == "json":
        return json.dumps(draw(JSON)).encode()
    if shape == "bytes":
        return draw(st.binary(max_size=300))
    body = draw(collections())
    if shape == "huge":  # padded with JSON whitespace to around the limit, on either side of it
        size = draw(st.integers(min_value=max(len(body), LIMIT - 64), max_value=LIMIT + 4096))
        return body + b" " * (size - len(body))
    if shape == "deep":  # a value nested around and past the parser's depth limit
        depth = draw(st.integers(min_value=DEPTH_MAX - 8, max_value=20_000))
        doc = json.loads(body)
        nested = "[" * depth + "]" * depth
        where = draw(st.sampled_from(["item", "top"]))
        text = json.dumps(doc)
        if where == "item" and doc["value"] and isinstance(doc["value"][0], dict):
            return (text.replace('{"', '{"deep": ' + nested + ', "', 2)).encode()
        return ("[" * depth + text + "]" * depth).encode()
    return body


JSON_TYPES = st.sampled_from(["application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
                              " application/json ;x=1", "application/json;"])  # fmt: skip
ODD_TYPES = st.sampled_from(
    [None, "", "text/plain", "application/jsonx", "application/x-www-form-urlencoded",
     "multipart/form-data; boundary=x", "application/merge-patch+json", "*/*"]
) | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)  # fmt: skip


def often(common: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`common` four times in five, so most requests get past the edge checks to the item checks."""
    return st.integers(0, 4).flatmap(lambda n: odd if n == 4 else common)


TOKEN_TEXT = st.text(max_size=TOKEN_MAX + 40)


@st.composite
def queries(draw: st.DrawFn) -> str:
    kind = draw(often(st.just("none"), st.sampled_from(["token", "token", "raw", "other"])))
    if kind == "none":
        return ""
    if kind == "token":  # Graph's handshake, as a URL-encoded token, maybe among other parameters
        token = quote(draw(TOKEN_TEXT), safe="")
        extra = draw(st.sampled_from(["", "&a=1", "&validationToken=second"]))
        return f"?validationToken={token}{extra}"
    if kind == "raw":  # whatever a client might put after the ?
        alphabet = st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#")
        return (
            "?"
            + draw(st.sampled_from(["validationToken", "validationToken=", "validationtoken=x", ""]))
            + draw(st.text(alphabet=alphabet, max_size=40))
        )
    return "?" + draw(st.sampled_from(["a=1", "validationTokens=x", "token=validationToken"]))


@st.composite
def requests(draw: st.DrawFn) -> Request:
    good_paths = st.sampled_from([NOTIFY_PATH, NOTIFY_PATH, LIFECYCLE_PATH])
    path = draw(often(good_paths, st.sampled_from([NOTIFY_PATH + "/", "/webhooks/other", "/webhooks"])))
    method = draw(often(st.just("POST"), st.sampled_from(["GET", "PUT", "DELETE", "PATCH"])))
    chunked = draw(st.booleans())
    return Request(method, path, draw(queries()), draw(often(JSON_TYPES, ODD_TYPES)), draw(bodies()), chunked)


# -- what must come of it ------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    status: int
    kept: list[dict[str, Any]]
    echo: str | None = None


def _query_token(query: str) -> tuple[bool, str | None]:
    """(whether the receiver treats it as a handshake, the token); the token by its own decoding."""
    raw = query[1:]
    if "validationToken" not in raw:
        return False, None
    for part in raw.split("&"):
        name, eq, value = part.partition("=")
        if unquote_plus(name) == "validationToken" and (eq or name):
            return True, unquote_plus(value)
    return False, None


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in a parsed document (without recursing: it may be deep)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        node, level = todo.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, level + 1)
            todo.extend((child, level + 1) for child in children)
    return deepest


def _kept(item: Any, rich_ok: bool) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("subscriptionId"), str):
        return False
    if item["subscriptionId"] not in SUBS:
        return False
    secret, tenant = SUBS[item["subscriptionId"]]
    given = item.get("tenantId")
    if tenant is not None and (not isinstance(given, str) or given.lower() != tenant.lower()):
        return False
    state = item.get("clientState")
    if not isinstance(state, str) or state != secret:
        return False
    return rich_ok or "encryptedContent" not in item


def expected(req: Request, valid_tokens: frozenset[str]) -> Expected:
    path = req.path.rstrip("/")
    if path not in (NOTIFY_PATH, LIFECYCLE_PATH):
        return Expected(404, [])
    if req.method != "POST":
        return Expected(405, [])
    handshake, token = _query_token(req.query)
    if handshake:
        assert token is not None
        return Expected(400, []) if len(token) > TOKEN_MAX else Expected(200, [], echo=token)
    media = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        return Expected(415, [])
    if len(req.body) > LIMIT:
        return Expected(413, [])
    try:
        doc = json.loads(req.body)
    except (ValueError, RecursionError):
        return Expected(400, [])
    if _depth(doc) > DEPTH_MAX:
        return Expected(400, [])
    if not isinstance(doc, dict) or not isinstance(doc.get("value"), list):
        return Expected(400, [])
    tokens = doc.get("validationTokens") or []
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        return Expected(400, [])
    rich_ok = bool(tokens) and all(t in valid_tokens for t in tokens)
    kept = [{k: v for k, v in i.items() if k != "clientState"} for i in doc["value"] if _kept(i, rich_ok)]
    return Expected(202, kept)


def assert_stored(harness: Harness, want: Expected) -> None:
    stored = harness.stored()
    if not want.kept:
        assert stored == [], f"a delivery that must be dropped was enqueued: {stored!r:.300}"
        assert harness.other_keys() == set(), "a delivery that must be dropped wrote to Redis"
        return
    ((priority, stored_items),) = stored  # one notification_batch job per delivery
    # Stored as Graph sent them (a JSON round trip), less the clientState, which is never stored.
    assert stored_items == pydantic_core.from_json(pydantic_core.to_json(want.kept))
    lifecycle = any("lifecycleEvent" in i for i in want.kept)
    assert priority == (LIFECYCLE_PRIORITY if lifecycle else PRIORITY_DEFAULT)


@FUZZ
@given(req=requests())
def test_every_delivery_is_answered_as_documented_and_stores_only_what_it_must(harness: Harness, req: Request) -> None:
    req = harness.real(req)
    harness.reset()
    response = harness.send(req)
    want = expected(req, frozenset([harness.valid_token]))
    event(f"status {want.status}, {'some' if want.kept else 'no'} items kept")
    if any("encryptedContent" in i for i in want.kept):
        event("a rich item kept (its validationTokens signed by graphsim)")
    assert response.status_code == want.status, (response.status_code, response.text[:200], want.status)
    if want.echo is not None:
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text == want.echo
    assert_stored(harness, want)


def test_the_check_fails_when_a_forged_item_is_stored(harness: Harness) -> None:
    """What the property asserts is not vacuous: a forged item stored (as the receiver would, had it
    skipped the clientState check) is caught, and so is a clientState left in a kept item."""
    harness.reset()
    secret = SUBS["sub-mail"][0]
    forged = {"subscriptionId": "sub-mail", "clientState": secret + "x", "tenantId": TENANT, "changeType": "created"}
    req = Request("POST", NOTIFY_PATH, "", "application/json", json.dumps({"value": [forged]}).encode())
    want = expected(req, frozenset([harness.valid_token]))
    assert want.status == 202 and want.kept == []
    batch = job(harness.settings.worker_queue, "notification_batch", {"items": [forged]})
    harness.runner.run(harness.app.receiver.writer.put([batch]))
    with pytest.raises(AssertionError, match="must be dropped"):
        assert_stored(harness, want)
    kept = {**forged, "clientState": secret}
    good = expected(Request("POST", NOTIFY_PATH, "", "application/json", json.dumps({"value": [kept]}).encode()),
                    frozenset([harness.valid_token]))  # fmt: skip
    assert len(good.kept) == 1
    with pytest.raises(AssertionError):
        assert_stored(harness, good)  # the stored item still carries its clientState


# -- Redis down: the documented 503, and only for what had to be stored --------------------------


@pytest.fixture(scope="module")
def harness_without_redis(graphsim_server: SimServer) -> Iterator[Harness]:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    config = _settings(url, graphsim_server).model_copy(update={"webhook_persist_deadline_s": 1.0})
    with _receiving(config, "no token is valid here") as h:
        yield h


@settings(FUZZ, max_examples=max(10, EXAMPLES // 5))
@given(req=requests())
def test_with_redis_down_a_delivery_with_items_to_check_is_503_and_nothing_else_changes(
    harness_without_redis: Harness, req: Request
) -> None:
    response = harness_without_redis.send(req)
    want = expected(req, frozenset())  # no token is valid here: no JWKS is fetched
    candidates = False
    if want.status == 202:
        doc = json.loads(req.body)
        candidates = any(isinstance(i, dict) and isinstance(i.get("subscriptionId"), str) for i in doc["value"])
    event(f"status {503 if candidates else want.status}")
    # Known subscriptions are read from Redis: with items to check, the receiver cannot answer but 503.
    assert response.status_code == (503 if candidates else want.status), (response.status_code, response.text[:200])
    if want.echo is not None:
        assert response.text == want.echo
