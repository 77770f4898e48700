"""Small helpers the processors share: the once-only forced token refresh and clearer 404s."""

from __future__ import annotations

from graphworks_core.errors import GraphHTTPError
from worker.context import JobContext


class RefreshOnce:
    """`force_refresh` for a job's calls: True for the first token asked after a 401/403, then False,
    so a job making many calls forces one new token, not one per call."""

    def __init__(self, ctx: JobContext) -> None:
        self._pending = ctx.force_token_refresh

    def __call__(self) -> bool:
        pending, self._pending = self._pending, False
        return pending


def explained(exc: GraphHTTPError, what: str) -> GraphHTTPError:
    """The same error (status, code, ids kept for the dead-letter entry) with a message saying what was missing."""
    return GraphHTTPError(
        exc.status,
        graph_code=exc.graph_code,
        message=f"{what} ({exc.message or 'no detail from Graph'})",
        request_id=exc.request_id,
        client_request_id=exc.client_request_id,
        retry_after_s=exc.retry_after_s,
        method=exc.method,
        url=exc.url,
    )
