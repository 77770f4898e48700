"""`GET /api/queue/events`: the events stream (`graphworks:events`) as Server-Sent Events.

Each event is one transition of a job (`retry_scheduled`, `completed`, `dead_lettered`,
`cancelled`, `redriven`): SSE `id` = the stream id, `event` = the transition, `data` = the job's
status record as JSON. A client that reconnects sends `Last-Event-ID` (browsers do it on their
own) and gets what it missed, as long as the stream (capped at EVENTS_STREAM_MAXLEN) still holds it.
Without it the stream starts with what happens next (`?since=0` replays what is kept). A comment
line every block slice keeps proxies from closing an idle connection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, StreamingResponse

from worker.client import GraphworksClient


def stream_id(value: str) -> tuple[int, int] | None:
    """(ms, seq) of `ms` or `ms-seq`, each an unsigned 64-bit number of at most 20 ASCII digits, as
    Redis takes them; None for anything else (a longer or bigger number, or a digit of another
    script, was a Redis error: a 500, or a stream cut off after its head)."""
    ms, dash, seq = value.partition("-")
    parts = (ms, seq) if dash else (ms, "0")
    if not all(p.isascii() and p.isdigit() and len(p) <= 20 and int(p) < 2**64 for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def events_router(client: GraphworksClient) -> APIRouter:
    router = APIRouter(prefix="/api/queue", tags=["ops"])

    @router.get(
        "/events",
        operation_id="queue_events",
        response_class=StreamingResponse,
        response_model=None,
        responses={200: {"content": {"text/event-stream": {}}, "description": "job transitions as SSE"}},
    )
    async def events(
        since: str | None = Query(None, description='a stream id to start after; "0": all kept; default: new ones'),
        last_event_id: str | None = Header(None, description="the id of the last event received (a reconnect)"),
    ) -> StreamingResponse | JSONResponse:
        """Job transitions as Server-Sent Events, resumable with `Last-Event-ID`."""
        start = last_event_id or since or "$"
        if start != "$" and stream_id(start) is None:
            return JSONResponse(
                {"detail": [{"loc": ["query", "since"], "msg": "not a stream id (like 1764633600000-0)",
                             "type": "value_error"}]},
                status_code=422,
            )  # fmt: skip
        return StreamingResponse(_sse(client, start), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip

    return router


async def _sse(client: GraphworksClient, start: str) -> AsyncIterator[str]:
    yield ": graphworks events\n\n"
    async for event in client.jobs.feed(start):
        if event is None:  # a block slice passed with nothing new
            yield ": keep-alive\n\n"
            continue
        data = json.dumps(event.record.model_dump(mode="json"), separators=(",", ":"))
        yield f"id: {event.stream_id}\nevent: {event.event}\ndata: {data}\n\n"
