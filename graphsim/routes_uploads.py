"""Upload-session URLs (OneDrive and Outlook attachments) and pre-authenticated download URLs.

They live under ``/v1.0/_uploads/`` and ``/v1.0/_downloads/`` so the graph layer's faults and
recording apply to them; the layer skips its token check there (the URL is the credential) and an
upload answers 401 to a request that does carry an Authorization header, as Graph may. A session
is complete once every byte arrived, whichever fragment brought the last missing one; until then each
answer (202 OneDrive, 200 Outlook) lists the ranges still missing, several if a `lose` fault
(graphsim/faults.py) made it forget a fragment, the PUT holding the file's last byte included.
https://learn.microsoft.com/en-us/graph/api/driveitem-createuploadsession
https://learn.microsoft.com/en-us/graph/outlook-large-attachments
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from graphsim import resources
from graphsim.common import sim_state
from graphsim.errors import LOSE_KEY, GraphError
from graphsim.files import SESSION_LIFETIME_S, UploadSession

FRAGMENT_MULTIPLE = 327_680  # OneDrive: fragments in multiples of 320 KiB
DRIVE_MAX_FRAGMENT = 60 * 1024 * 1024  # OneDrive: at most 60 MiB per PUT
MAIL_MAX_FRAGMENT = 4 * 1024 * 1024  # Outlook: "up to 4 MB each time"
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


def upload_url(request: Request, session_id: str) -> str:
    return f"{request.url.scheme}://{request.url.netloc}/v1.0/_uploads/{session_id}"


def download_url(request: Request, token: str) -> str:
    return f"{request.url.scheme}://{request.url.netloc}/v1.0/_downloads/{token}"


def _iso(ts: float) -> str:
    return resources.iso_ms(datetime.fromtimestamp(ts, UTC))


def expected_ranges(session: UploadSession) -> list[str]:
    """nextExpectedRanges: a missing range that runs to the end of the file is "{start}-" for
    OneDrive and a bare "{start}" for Outlook attachments; one inside the file is "{first}-{last}"."""
    out = []
    for first, last in session.missing():
        if last is not None and (session.size is None or last < session.size - 1):
            out.append(f"{first}-{last}")
        else:
            out.append(f"{first}-" if session.kind == "drive" else str(first))
    return out


def session_status(session: UploadSession) -> dict[str, object]:
    return {"expirationDateTime": _iso(session.expires_at), "nextExpectedRanges": expected_ranges(session)}


def _live_session(request: Request) -> UploadSession:
    session = sim_state(request).files.session(request.path_params["session_id"])
    if session is None:
        raise GraphError(404, "itemNotFound", "The upload session was not found or has expired.")
    return session


async def put_fragment(request: Request) -> Response:
    """PUT {uploadUrl} with Content-Range: accept the next fragment (202/200), or finish (201)."""
    if "authorization" in request.headers:
        raise GraphError(401, "InvalidAuthenticationToken", "An upload URL is pre-authenticated; "
                         "requests to it must not carry an Authorization header.")  # fmt: skip
    files = sim_state(request).files
    session = _live_session(request)
    match = _CONTENT_RANGE.match(request.headers.get("content-range", ""))
    if match is None:
        raise GraphError(400, "invalidRange", "A Content-Range header of the form 'bytes start-end/total' is required.")
    start, end, total = (int(g) for g in match.groups())
    body = await request.body()
    if end < start or len(body) != end - start + 1:
        raise GraphError(400, "invalidRange", f"Content-Range {start}-{end} does not match the {len(body)} bytes sent.")
    limit = DRIVE_MAX_FRAGMENT if session.kind == "drive" else MAIL_MAX_FRAGMENT
    if len(body) > limit:
        raise GraphError(413, "RequestEntityTooLarge", f"A fragment may be at most {limit} bytes.")
    lose = request.scope.get(LOSE_KEY)
    with files.lock:
        if session.size is not None and total != session.size:
            raise GraphError(400, "invalidRange", f"The total {total} differs from the session's size {session.size}.")
        if end >= total:
            raise GraphError(400, "invalidRange", f"Content-Range {start}-{end} lies beyond the total {total}.")
        session.size = total
        if lose is not None:
            session.forget(int(lose[0]), int(lose[1]))
        if start not in {first for first, _ in session.missing()} or session.overlaps(start, end):
            # Overlapping or out-of-order fragments: Graph answers 416; the client queries the status.
            raise GraphError(416, "invalidRange", f"The uploaded fragment starts at {start}; "
                             f"the next expected ranges are {', '.join(expected_ranges(session))}.")  # fmt: skip
        last = end + 1 == total
        if session.kind == "drive" and not last and len(body) % FRAGMENT_MULTIPLE:
            raise GraphError(400, "invalidRange", "Fragments other than the last must be multiples of 320 KiB.")
        session.accept(start, body)
        session.expires_at = time.time() + SESSION_LIFETIME_S
        done = not session.missing()
    if not done:
        return JSONResponse(session_status(session), status_code=202 if session.kind == "drive" else 200)
    files.end_session(session.id)
    return _finish(request, session)


def _finish(request: Request, session: UploadSession) -> Response:
    files = sim_state(request).files
    content = bytes(session.data)
    target = session.target
    if session.kind == "drive":
        item, created = files.put_item(target["drive_id"], target["path"], content)
        return JSONResponse(item.resource(), status_code=201 if created else 200)
    attachment_id = resources.new_mail_id()
    attachment = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "id": attachment_id,
        "name": target["name"],
        "contentType": target.get("contentType") or "application/octet-stream",
        "size": len(content),
        "isInline": bool(target.get("isInline", False)),
        "contentId": target.get("contentId"),
        # graphsim keeps a digest, not 150 MB of base64, for tests to compare.
        "contentSha256": hashlib.sha256(content).hexdigest(),
    }
    files.add_draft_attachment(target["user_id"], target["message_id"], attachment)
    location = (f"https://outlook.office.com/api/v2.0/Users('{target['user_id']}')/Messages('{target['message_id']}')"
                f"/Attachments('{attachment_id}')")  # fmt: skip
    return Response(status_code=201, headers={"Location": location})


async def get_status(request: Request) -> JSONResponse:
    """GET {uploadUrl}: the session's nextExpectedRanges (how a client resumes after a 416 or a crash)."""
    return JSONResponse(session_status(_live_session(request)))


async def cancel(request: Request) -> Response:
    """DELETE {uploadUrl}: cancel the session."""
    if not sim_state(request).files.end_session(request.path_params["session_id"]):
        raise GraphError(404, "itemNotFound", "The upload session was not found or has expired.")
    return Response(status_code=204)


async def download(request: Request) -> Response:
    """GET a pre-authenticated download URL (where `/content` redirects)."""
    item = sim_state(request).files.download(request.path_params["token"])
    if item is None:
        raise GraphError(404, "itemNotFound", "The resource could not be found.")
    return Response(item.content, media_type="application/octet-stream")


def routes() -> list[BaseRoute]:
    """Upload and download URLs, relative to ``/v1.0``."""
    return [
        Route("/_uploads/{session_id}", put_fragment, methods=["PUT"]),
        Route("/_uploads/{session_id}", get_status, methods=["GET"]),
        Route("/_uploads/{session_id}", cancel, methods=["DELETE"]),
        Route("/_downloads/{token}", download, methods=["GET"]),
    ]
