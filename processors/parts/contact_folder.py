"""The id of a user's default Contacts folder, which a contacts sync needs: Graph's contact delta is
documented per folder only, `GET /users/{id}/contactFolders/{id}/contacts/delta`
(https://learn.microsoft.com/en-us/graph/api/contact-delta).

Graph v1.0 gives contact folders no well-known name (mail folders have them; contactFolder has only
id, displayName and parentFolderId: https://learn.microsoft.com/en-us/graph/api/resources/contactfolder).
What it documents instead:
- `GET /users/{id}/contacts` lists the contacts of the default Contacts folder
  (https://learn.microsoft.com/en-us/graph/api/user-list-contacts), and a contact's `parentFolderId`
  is the id of its folder (https://learn.microsoft.com/en-us/graph/api/resources/contact);
- `GET /users/{id}/contactFolders` lists the folders in the default Contacts folder
  (https://learn.microsoft.com/en-us/graph/api/user-list-contactfolders), each with its
  `parentFolderId`: the default folder's id.
So one contact's `parentFolderId`, else one child folder's. A default folder holding neither has
nothing to sync yet; the caller looks again next time. The id found is kept with the sync state
(processors/parts/sync_state.py), so this costs one or two GETs per synced mailbox, once.
"""

from __future__ import annotations

from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from graphworks_core.errors import GraphHTTPError, JobRejected
from worker.context import JobContext
from worker.graph.responses import reply_model


class _Parent(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    parent_folder_id: str | None = Field(None, alias="parentFolderId")


class _Listing(BaseModel):
    model_config = ConfigDict(extra="ignore")

    value: list[_Parent] = Field(default_factory=list)


async def default_contact_folder(ctx: JobContext, owner: str) -> str | None:
    """The id of `owner`'s default Contacts folder; None when it holds no contact and no folder."""
    base = f"{ctx.graph.base_url}/users/{quote(owner, safe='@')}"
    for listed in ("contacts", "contactFolders"):
        url = f"{base}/{listed}?$top=1&$select=parentFolderId"
        try:
            response = await ctx.graph.call_url("GET", url, force_refresh=ctx.force_token_refresh)
        except GraphHTTPError as exc:
            if exc.status == 404:
                raise JobRejected(
                    f"sync of contacts of {owner}: Graph answered 404 {exc.graph_code or ''} listing its "
                    f"{listed}: the user does not exist or this app cannot see them; check the owner"
                ) from exc
            raise
        for entry in reply_model(_Listing, response).value:
            if entry.parent_folder_id:
                return entry.parent_folder_id
    return None
