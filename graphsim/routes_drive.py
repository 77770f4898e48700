"""OneDrive/SharePoint routes: small upload (PUT content), upload sessions, metadata, download, delete.

Items are addressed by path (``/drives/{drive-id}/root:/{path}:``) or by id
(``/drives/{drive-id}/items/{item-id}``).
https://learn.microsoft.com/en-us/graph/api/driveitem-put-content
https://learn.microsoft.com/en-us/graph/api/driveitem-createuploadsession
https://learn.microsoft.com/en-us/graph/api/driveitem-get-content
https://learn.microsoft.com/en-us/graph/api/driveitem-delete
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from graphsim.common import sim_state
from graphsim.errors import GraphError
from graphsim.files import DriveItem
from graphsim.routes_uploads import download_url, session_status, upload_url

SIMPLE_UPLOAD_MAX = 250 * 1024 * 1024  # PUT /content takes files up to 250 MB
_CONFLICT = "@microsoft.graph.conflictBehavior"


def _not_found() -> GraphError:
    return GraphError(404, "itemNotFound", "The resource could not be found.")


def _item(request: Request) -> DriveItem:
    params = request.path_params
    files = sim_state(request).files
    found = (
        files.item_at(params["drive_id"], params["item_path"])
        if "item_path" in params
        else files.item_by_id(params["drive_id"], params["item_id"])
    )
    if found is None:
        raise _not_found()
    return found


def _check_conflict(request: Request, behavior: str) -> None:
    params = request.path_params
    if behavior == "fail" and sim_state(request).files.item_at(params["drive_id"], params["item_path"]) is not None:
        raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")


async def put_content(request: Request) -> JSONResponse:
    """PUT /drives/{d}/root:/{path}:/content -> 201 (new) or 200 (replaced) driveItem."""
    _check_conflict(request, request.query_params.get(_CONFLICT, "replace"))
    body = await request.body()
    if len(body) > SIMPLE_UPLOAD_MAX:
        raise GraphError(413, "RequestEntityTooLarge", "Use an upload session for files over 250 MB.")
    item, created = sim_state(request).files.put_item(
        request.path_params["drive_id"], request.path_params["item_path"], body
    )
    return JSONResponse(item.resource(), status_code=201 if created else 200)


async def create_upload_session(request: Request) -> JSONResponse:
    """POST /drives/{d}/root:/{path}:/createUploadSession -> 200 uploadSession."""
    raw = await request.body()
    try:
        payload = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise GraphError(400, "BadRequest", f"Invalid JSON in request body: {exc}.") from exc
    item = payload.get("item") if isinstance(payload, dict) else None
    behavior = item.get(_CONFLICT, "replace") if isinstance(item, dict) else "replace"
    _check_conflict(request, behavior)
    size = item.get("fileSize") if isinstance(item, dict) else None
    target = {"drive_id": request.path_params["drive_id"], "path": request.path_params["item_path"]}
    session = sim_state(request).files.new_session("drive", target, size if isinstance(size, int) else None)
    return JSONResponse({"uploadUrl": upload_url(request, session.id), **session_status(session)})


async def get_item(request: Request) -> JSONResponse:
    return JSONResponse(_item(request).resource())


async def get_content(request: Request) -> Response:
    """GET .../content -> 302 to a pre-authenticated download URL, as Graph answers."""
    item = _item(request)
    return RedirectResponse(download_url(request, sim_state(request).files.download_token(item)), status_code=302)


async def delete_item(request: Request) -> Response:
    item = _item(request)
    sim_state(request).files.delete_item(item.drive_id, item.path)
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    """Drive routes, relative to ``/v1.0``; the more specific path forms come first."""
    by_path = "/drives/{drive_id}/root:/{item_path:path}:"
    by_id = "/drives/{drive_id}/items/{item_id}"
    return [
        Route(f"{by_path}/content", put_content, methods=["PUT"]),
        Route(f"{by_path}/content", get_content, methods=["GET"]),
        Route(f"{by_path}/createUploadSession", create_upload_session, methods=["POST"]),
        Route(by_path, get_item, methods=["GET"]),
        Route(by_path, delete_item, methods=["DELETE"]),
        Route(f"{by_id}/content", get_content, methods=["GET"]),
        Route(by_id, get_item, methods=["GET"]),
        Route(by_id, delete_item, methods=["DELETE"]),
    ]
