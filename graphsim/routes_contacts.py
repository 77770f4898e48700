"""Contact folder reads: the contacts of a user's default Contacts folder and its child folders.

A contact names its folder in `parentFolderId`, and so does a contact folder: listing either under
the default folder is how a client learns that folder's id (Graph's contactFolder has no well-known
name in v1.0). Data comes from the delta collections ``contacts:{user}:{folder id}``; the default
folder is `delta_resources.default_contacts_folder(user)`, every other folder of the user is a child
of it. A user with no contact folder at all is unknown (404).
https://learn.microsoft.com/en-us/graph/api/user-list-contacts
https://learn.microsoft.com/en-us/graph/api/user-list-contactfolders
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from graphsim.common import sim_state
from graphsim.delta_resources import default_contacts_folder
from graphsim.delta_store import collection_key
from graphsim.errors import GraphError
from graphsim.resources import GRAPH_ROOT


def _folders(request: Request, user: str) -> list[str]:
    """The ids of the user's contact folders, the default one first; 404 for an unknown user."""
    prefix = collection_key("contacts", user, "")
    found = [key[len(prefix) :] for key in sim_state(request).delta.keys(prefix)]
    if not found:
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
    default = default_contacts_folder(user)
    return [default, *(f for f in found if f != default)]


def _listing(request: Request, items: list[dict[str, Any]], context: str) -> JSONResponse:
    """A collection answer honouring `$top` and `$select` (id is always kept), without paging."""
    query = request.query_params
    top = query.get("$top")
    if top is not None:
        if not top.isdigit():
            raise GraphError(400, "BadRequest", f"Invalid $top value '{top}'.")
        items = items[: int(top)]
    select = [f.strip() for f in query.get("$select", "").split(",") if f.strip()]
    if select:
        items = [{k: v for k, v in i.items() if k in ("id", *select)} for i in items]
    return JSONResponse({"@odata.context": f"{GRAPH_ROOT}/$metadata#{context}", "value": items})


async def list_default_contacts(request: Request) -> JSONResponse:
    """GET /users/{user_id}/contacts: the contacts of the default Contacts folder."""
    user = request.path_params["user_id"]
    default = _folders(request, user)[0]
    items = sim_state(request).delta.items(collection_key("contacts", user, default))
    return _listing(request, items, f"users('{user}')/contacts")


async def list_contact_folders(request: Request) -> JSONResponse:
    """GET /users/{user_id}/contactFolders: the folders in the default Contacts folder."""
    user = request.path_params["user_id"]
    default, *children = _folders(request, user)
    folders = [{"id": f, "displayName": f, "parentFolderId": default} for f in children]
    return _listing(request, folders, f"users('{user}')/contactFolders")


def routes() -> list[BaseRoute]:
    """Graph routes, relative to ``/v1.0``."""
    return [
        Route("/users/{user_id}/contacts", list_default_contacts, methods=["GET"]),
        Route("/users/{user_id}/contactFolders", list_contact_folders, methods=["GET"]),
    ]
