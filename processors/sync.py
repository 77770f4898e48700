"""sync: a delta query of one resource, page by page, every change handed to the sink.

Follows `@odata.nextLink` to the `@odata.deltaLink`, committing each page (its changes and the link
to resume from) before fetching the next, so a worker killed mid-round resumes from its last page.
A 410 Gone (`syncStateNotFound`, `resyncChanges*`) means Graph dropped the state token: the round
restarts from the initial URL as a full resync, and the end of that round reports as deleted the
items it no longer lists. One run per resource at a time (a lock with TTL owned by the job id, so
the re-run of a job whose worker died takes it back at once). Contacts are synced per folder (the only
delta Graph documents for them); without a `folder`, the user's default Contacts folder, looked up
once and kept with the sync state (processors/parts/contact_folder.py).
https://learn.microsoft.com/en-us/graph/delta-query-overview
https://learn.microsoft.com/en-us/onedrive/developer/rest-api/api/driveitem_delta (410 resync codes)
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from graphworks_core import keys
from graphworks_core.envelope import Envelope
from graphworks_core.errors import GraphHTTPError, JobRejected
from graphworks_core.payloads import Sync
from processors.parts.contact_folder import default_contact_folder
from processors.parts.sync_state import LinkRecord, LockLost, SyncState
from processors.parts.sync_targets import SyncTarget, target_for
from worker.context import JobContext
from worker.graph.responses import reply_model
from worker.queue import JobQueue, Scheduled
from worker.sinks import sink_for

log = logging.getLogger("graphworks.sync")

RESYNC_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})


class DeltaPage(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    value: list[dict[str, Any]] = Field(default_factory=list)
    next_link: str | None = Field(None, alias="@odata.nextLink")
    delta_link: str | None = Field(None, alias="@odata.deltaLink")


class SyncResult(BaseModel):
    status: Literal["synced", "continued", "busy", "superseded"]
    resource_key: str
    pages: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    full_resync: bool = False


def needs_resync(exc: GraphHTTPError) -> bool:
    """Graph dropped the sync state: 410 Gone, or its codes for it on another status."""
    code = (exc.graph_code or "").lower()
    return exc.status == 410 or code in RESYNC_CODES or code.startswith("resyncchanges")


async def run_sync(ctx: JobContext, payload: Sync) -> SyncResult:
    target = target_for(payload, ctx.graph.base_url)
    state = SyncState(ctx.redis, payload.tenant_id, target)
    owner = ctx.envelope.id
    lock_ttl_s = max(ctx.settings.sync_lock_ttl_s, ctx.settings.graph_call_timeout_s + 5)
    if not await state.acquire(owner, lock_ttl_s):
        await ctx.redis.hincrby(keys.PROCESSOR_STATS, "sync.busy_noop", 1)  # type: ignore[misc]
        log.info("sync %s: another run holds it; nothing to do", target.key)
        return SyncResult(status="busy", resource_key=target.key)
    try:
        if target.needs_contact_folder:
            folder = await _default_contact_folder(ctx, payload, state)
            if folder is None:
                log.info("sync %s: the default contact folder holds nothing yet; nothing to do", target.key)
                return SyncResult(status="synced", resource_key=target.key)
            target = target_for(payload, ctx.graph.base_url, default_contact_folder=folder)
            state.retarget(target)
        result = await _rounds(ctx, payload, target, state, owner, lock_ttl_s)
    except LockLost:
        log.warning("sync %s: lock lost to another run; stopping", target.key)
        return SyncResult(status="superseded", resource_key=target.key)
    finally:
        await state.release(owner)
    if result.status == "continued":
        await _continue(ctx, payload)  # after the release, or the new job would find the lock held
    return result


async def _default_contact_folder(ctx: JobContext, payload: Sync, state: SyncState) -> str | None:
    """The default contact folder's id: kept with the sync state, else looked up (and then kept)."""
    folder = await state.contact_folder()
    if folder is None:
        folder = await default_contact_folder(ctx, payload.owner)
        if folder is not None:
            await state.keep_contact_folder(folder)
    return folder


async def _rounds(
    ctx: JobContext, payload: Sync, target: SyncTarget, state: SyncState, owner: str, lock_ttl_s: float
) -> SyncResult:
    result = SyncResult(status="synced", resource_key=target.key)
    if payload.full:
        await _start_full_resync(ctx, state, target, "requested")
        result.full_resync = True
    link = await state.link()
    if link is not None and link.window != target.window:
        log.info("sync %s: window changed from %s to %s; a full round in the new one", target.key, link.window,
                 target.window)  # fmt: skip
        await state.restart()
        link = None
    if link is not None and link.contact_folder != target.contact_folder:
        # A link of another folder, or from before contacts were synced per folder: a full round on
        # this folder's delta (items delivered before and still there are not delivered again).
        log.info("sync %s: links were of contact folder %s, now %s; a full round", target.key,
                 link.contact_folder, target.contact_folder)  # fmt: skip
        await state.restart()
        link = None
    if link is None:  # never synced, or restarted: a full round from the initial URL
        url, full, pages = target.initial_url, True, 0
    elif link.kind == "next":  # resume the round a previous run (or a dead worker) left
        url, full, pages = link.url, link.full, link.pages
    else:  # a new incremental round from the last deltaLink
        url, full, pages = link.url, False, 0
    budget_s = ctx.settings.sync_job_budget_s or ctx.settings.worker_job_timeout_s / 2
    started = ctx.clock.now()
    restarted = False
    sink = sink_for(ctx.settings)
    while True:
        try:
            response = await ctx.graph.call_url(
                "GET", url, headers={"Prefer": f"odata.maxpagesize={ctx.settings.sync_page_size}"},
                force_refresh=ctx.force_token_refresh,
            )  # fmt: skip
        except GraphHTTPError as exc:
            if needs_resync(exc) and not restarted:
                restarted = True
                await _start_full_resync(ctx, state, target, f"{exc.status} {exc.graph_code}")
                url, full, pages = target.initial_url, True, 0
                result.full_resync = True
                continue
            if exc.status == 404:
                if target.resource == "contacts" and not payload.folder:
                    await state.keep_contact_folder(None)  # look the default folder up again next time
                raise JobRejected(
                    f"sync of {target.describe}: Graph answered 404 {exc.graph_code or ''}: it does not exist "
                    "or this app cannot see it; check the owner/folder/channel id"
                ) from exc
            raise
        page = reply_model(DeltaPage, response)
        nxt_url = page.next_link or page.delta_link
        if nxt_url is None:
            raise JobRejected(f"sync of {target.describe}: a delta page with neither @odata.nextLink nor deltaLink")
        pages += 1
        kind: Literal["next", "delta"] = "next" if page.next_link else "delta"
        nxt = LinkRecord(url=nxt_url, kind=kind, full=full, pages=pages, window=target.window,
                         contact_folder=target.contact_folder)  # fmt: skip
        counts = await state.commit_page(sink, page.value, nxt, owner=owner, lock_ttl_s=lock_ttl_s,
                                         now=ctx.clock.now())  # fmt: skip
        result.pages += 1
        result.created += counts.get("created", 0)
        result.updated += counts.get("updated", 0)
        result.deleted += counts.get("deleted", 0)
        await ctx.progress(result.pages, None, "pages")  # a delta round's page count is not known ahead
        if nxt.kind == "delta":
            log.info("sync %s: round done, %d pages (%s)", target.key, pages, "full" if full else "incremental")
            return result
        url = nxt_url
        if ctx.clock.now() - started >= budget_s:
            result.status = "continued"
            return result


async def _start_full_resync(ctx: JobContext, state: SyncState, target: SyncTarget, why: str) -> None:
    await state.restart()
    async with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(keys.PROCESSOR_STATS, "sync.full_resyncs", 1)
        pipe.hincrby(keys.PROCESSOR_STATS, f"sync.full_resyncs.{target.resource}", 1)
        await pipe.execute()
    log.warning("sync %s: full resync from the initial delta URL (%s)", target.key, why)


async def _continue(ctx: JobContext, payload: Sync) -> None:
    """Hand the rest of the round to a new job, so one job never nears its timeout."""
    settings = ctx.settings
    queue = JobQueue.from_settings(settings, ctx.redis, ctx.clock)
    follow = payload.model_copy(update={"full": False})
    env = Envelope(type="sync", payload=follow.model_dump(mode="json"), priority=ctx.envelope.priority,
                   queue=settings.worker_queue)  # fmt: skip
    await queue.put([Scheduled(env, use_idempotency=False)])
    log.info("sync %s: job budget spent; continued as job %s", payload.resource, env.id)
