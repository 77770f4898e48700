"""The operator's page in Chromium against a real serve, worker and graphsim (issue: the dashboard).

Each test finds controls by their accessible names, which are the page's contract (DESIGN.md,
"Dashboard"); the `watched` fixture fails a test whose page logged an error or broke its CSP.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from graphsim.faults import Fault
from graphsim.server import SimServer
from tests.api.conftest import ADMIN, VIEWER, Proc, Served
from tests.dashboard.conftest import UI_TIMEOUT_MS, Watched, sign_in

pytestmark = pytest.mark.slow

LIMIT_S = 90.0
ACTIONS = ("Redrive", "Mark reviewed", "Pause", "Resume", "Clear", "Cancel job", "Confirm")


def wait_for(what: str, probe: Any, limit_s: float = LIMIT_S) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def job_status(served: Served, job_id: str) -> str:
    with served.client(ADMIN) as c:
        reply = c.get(f"/api/jobs/{job_id}")
    return str(reply.json()["status"]) if reply.status_code == 200 else ""


def send_teams(served: Served, chat_id: str, content: str = "hello") -> str:
    with served.client(ADMIN) as c:
        reply = c.post("/api/jobs/teams_message", json={"chat_id": chat_id, "content": content})
    assert reply.status_code == 202, reply.text
    return str(reply.json()["id"])


def completed(served: Served, job_id: str) -> bool:
    return job_status(served, job_id) == "completed"


def region(page: Page, name: str) -> Locator:
    return page.get_by_role("region", name=name, exact=True)


def queue_row(page: Page, job_type: str) -> Locator:
    return (
        region(page, "Queues").get_by_role("row").filter(has=page.get_by_role("rowheader", name=job_type, exact=True))
    )


def cell(page: Page, job_type: str, column: str) -> Locator:
    """A queue row's cell under the column headed `column`."""
    headers = [h.strip() for h in region(page, "Queues").get_by_role("columnheader").all_inner_texts()]
    return queue_row(page, job_type).locator("th, td").nth(headers.index(column))


def fmt(n: int) -> str:
    return f"{n:,}"


def dead_letter(served: Served, graphsim: SimServer, chat: str) -> str:
    """A teams job that graphsim refuses with a 400 for ever: it is dead-lettered at once."""
    graphsim.state.add_fault(Fault(method="POST", path=f"/chats/{chat}/messages", status=400, times=None,
                                   graph_code="BadRequest", message="Chat is archived."))  # fmt: skip
    job_id = send_teams(served, chat)
    wait_for("the dead letter", lambda: job_status(served, job_id) == "dead_lettered")
    return job_id


def test_sign_in_then_the_overview_shows_what_the_api_counts(
    watched: Watched, served: Served, worker: Proc, graphsim: SimServer
) -> None:
    ids = [send_teams(served, f"19:overview-{i}") for i in range(3)]
    for job_id in ids:
        wait_for("the sends", lambda job_id=job_id: completed(served, job_id))
    page = watched.page
    sign_in(page, ADMIN)
    for name in ("Queues", "Dead letters", "Workers", "Alerts", "Rate limits"):
        expect(region(page, name)).to_be_visible()
    with served.client(ADMIN) as c:
        stats = c.get("/api/queue/stats").json()["types"]
    expect(queue_row(page, "teams_message")).to_be_visible()
    for job_type, want in stats.items():
        for column, field in (("Queued", "queued"), ("Completed", "completed"), ("Dead-lettered", "dead_lettered"),
                              ("Retried", "retried"), ("Running", "running")):  # fmt: skip
            expect(cell(page, job_type, column)).to_have_text(fmt(want[field]))
    assert stats["teams_message"]["completed"] >= 3
    for job_type in stats:
        expect(queue_row(page, job_type)).to_have_count(1)
    expect(region(page, "Workers").get_by_role("row")).not_to_have_count(0)
    page.get_by_role("link", name="Dead letters", exact=True).click()
    expect(region(page, "Dead letters")).to_be_visible()


def test_a_dead_letter_appears_live_and_its_group_is_redriven_through_the_preview(
    watched: Watched, served: Served, worker: Proc, graphsim: SimServer
) -> None:
    page = watched.page
    sign_in(page, ADMIN)
    page.get_by_role("link", name="Dead letters", exact=True).click()
    expect(page.locator("#live")).to_have_text("Live")
    page.evaluate("window.__sameDocument = true")
    events_before = int(page.locator("#live").get_attribute("data-events") or "0")

    chat = f"19:live-{uuid.uuid4().hex[:8]}"
    job_id = dead_letter(served, graphsim, chat)
    entries = region(page, "Dead letters").get_by_role("table", name="Dead-letter entries")
    expect(entries.get_by_role("link", name=job_id)).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    assert int(page.locator("#live").get_attribute("data-events") or "0") > events_before, "no SSE event arrived"

    graphsim.state.clear_faults()
    groups = region(page, "Dead letters").get_by_role("table", name="Dead-letter groups")
    with served.client(ADMIN) as c:
        group = next(g for g in c.get("/api/queue/dead-letter/groups").json() if g["type"] == "teams_message")
    groups.get_by_role("checkbox", name=re.compile(r"^Select group teams_message")).first.check()
    page.get_by_role("button", name="Redrive", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"{fmt(group['count'])} dead letter")
    expect(dialog).to_contain_text("will be redriven")
    expect(dialog).to_contain_text(job_id)  # the preview's sample: the newest of the group
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text(re.compile(r"^Redriven \d+ dead letter"))).to_be_visible()
    wait_for("the redriven job to complete", lambda: completed(served, job_id))
    expect(entries.get_by_role("link", name=job_id)).to_have_count(0)


def test_cancel_in_the_preview_redrives_nothing(
    watched: Watched, served: Served, worker: Proc, graphsim: SimServer
) -> None:
    job_id = dead_letter(served, graphsim, f"19:keep-{uuid.uuid4().hex[:8]}")
    page = watched.page
    sign_in(page, ADMIN)
    page.goto(f"/dashboard#/dead-letters/{job_id}")
    page.get_by_role("button", name="Redrive", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("1 dead letter will be redriven")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert job_status(served, job_id) == "dead_lettered"


def test_an_entry_shows_its_attempts_and_is_marked_reviewed_with_a_note(
    watched: Watched, served: Served, worker: Proc, graphsim: SimServer
) -> None:
    job_id = dead_letter(served, graphsim, f"19:review-{uuid.uuid4().hex[:8]}")
    page = watched.page
    sign_in(page, ADMIN)
    page.get_by_role("link", name="Dead letters", exact=True).click()
    region(page, "Dead letters").get_by_role("link", name=job_id).click()
    expect(page.get_by_role("heading", name=f"Dead letter {job_id}")).to_be_visible()
    failure = region(page, "Failure")
    expect(failure).to_contain_text("BadRequest")
    expect(failure).to_contain_text("Chat is archived.")
    expect(failure.get_by_role("button", name="Copy request-id")).to_be_visible()
    expect(region(page, "Attempts").get_by_role("listitem")).to_have_count(1)
    expect(region(page, "Attempts")).to_contain_text("no retry: dead-lettered")

    page.get_by_role("button", name="Mark reviewed").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Note").fill("archived chat: asked the team to pick a new one")
    dialog.get_by_role("button", name="Confirm").click()
    expect(failure).to_contain_text("yes: archived chat")
    with served.client(ADMIN) as c:
        entry = c.get(f"/api/queue/dead-letter/{job_id}").json()
    assert entry["reviewed"] is True and entry["note"] == "archived chat: asked the team to pick a new one"


def paused_teams_row(page: Page) -> Locator:
    """Signed in as admin, teams_message paused from its row in Queues; the row."""
    sign_in(page, ADMIN)
    row = queue_row(page, "teams_message")
    row.get_by_role("button", name="Pause").click()
    expect(row).to_contain_text("paused")
    return row


def test_pausing_a_type_holds_its_jobs_until_resumed(
    watched: Watched, served: Served, worker: Proc, graphsim: SimServer
) -> None:
    page = watched.page
    row = paused_teams_row(page)
    held = send_teams(served, f"19:held-{uuid.uuid4().hex[:8]}")
    with served.client(ADMIN) as c:  # a mail job passes while teams_message waits: the worker is running
        reply = c.post("/api/jobs/mail", json={"mailbox": "ops@contoso.com", "to": ["a@contoso.com"],
                                               "subject": "s", "body": "b"})  # fmt: skip
    mail = str(reply.json()["id"])
    wait_for("the mail job", lambda: completed(served, mail))
    assert job_status(served, held) == "queued"
    expect(cell(page, "teams_message", "Queued")).not_to_have_text("0")

    row.get_by_role("button", name="Resume").click()
    expect(row).to_contain_text("active")
    wait_for("the held job", lambda: completed(served, held))


def test_clear_asks_for_the_type_name_before_it_cancels(
    watched: Watched, served: Served, worker: Proc, graphsim: SimServer
) -> None:
    page = watched.page
    row = paused_teams_row(page)
    doomed = send_teams(served, f"19:doomed-{uuid.uuid4().hex[:8]}")
    row.get_by_role("button", name="Clear").click()
    dialog = page.get_by_role("dialog")
    confirm = dialog.get_by_role("button", name="Confirm")
    expect(confirm).to_be_disabled()
    dialog.get_by_label("Type teams_message to confirm").fill("teams")
    expect(confirm).to_be_disabled()
    dialog.get_by_label("Type teams_message to confirm").fill("teams_message")
    confirm.click()
    expect(region(page, "Queues")).to_contain_text(re.compile(r"Cleared [1-9]\d* queued teams_message jobs"))
    assert job_status(served, doomed) == "cancelled"
    row.get_by_role("button", name="Resume").click()
    expect(row).to_contain_text("active")


def test_find_job_goes_straight_to_the_job(watched: Watched, served: Served, worker: Proc, graphsim: SimServer) -> None:
    chat = f"19:find-{uuid.uuid4().hex[:8]}"
    job_id = send_teams(served, chat)
    wait_for("the job", lambda: completed(served, job_id))
    page = watched.page
    sign_in(page, ADMIN)
    search = page.get_by_role("searchbox", name="Find job")
    search.fill(job_id)
    search.press("Enter")
    expect(page.get_by_role("heading", name=f"Job {job_id}")).to_be_visible()
    status = region(page, "Status")
    expect(status).to_contain_text("completed")
    expect(status).to_contain_text("teams_message")
    expect(region(page, "Result")).to_contain_text(f'"chat_id": "{chat}"')


def test_the_viewer_sees_everything_and_no_action(
    watched: Watched, served: Served, worker: Proc, graphsim: SimServer
) -> None:
    entry = dead_letter(served, graphsim, f"19:viewer-{uuid.uuid4().hex[:8]}")
    page = watched.page
    sign_in(page, VIEWER)
    for view in ("#/", "#/dead-letters", f"#/dead-letters/{entry}", "#/jobs", f"#/jobs/{entry}", "#/schedules"):
        page.goto(f"/dashboard{view}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        expect(page.locator("main table, main dl, main .empty").first).to_be_visible()
        for name in ACTIONS:
            expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
        expect(page.get_by_role("checkbox")).to_have_count(0)
    page.goto("/dashboard#/")
    expect(queue_row(page, "teams_message")).to_be_visible()
    # The session cookie carries the viewer's role to the API too: a state change is refused.
    cookies = {c["name"]: c["value"] for c in watched.context.cookies()}
    csrf = page.evaluate("fetch('/dashboard/session').then((r) => r.json()).then((s) => s.csrf)")
    with httpx.Client(base_url=served.url, cookies=cookies, timeout=30) as c:
        refused = c.post("/api/queue/teams_message/pause", headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403


def test_the_session_cookie_is_httponly_strict_and_actions_need_the_csrf_header(
    watched: Watched, served: Served
) -> None:
    page = watched.page
    sign_in(page, ADMIN)
    (cookie,) = watched.context.cookies()
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == "", "the session cookie is readable by script"
    jar = {cookie["name"]: cookie["value"]}
    csrf = page.evaluate("fetch('/dashboard/session').then((r) => r.json()).then((s) => s.csrf)")
    with httpx.Client(base_url=served.url, cookies=jar, timeout=30) as c:
        assert c.get("/api/queue/stats").status_code == 200
        assert c.post("/api/queue/mail/pause").status_code == 403  # no CSRF header
        assert c.post("/api/queue/mail/pause", headers={"X-CSRF-Token": "forged"}).status_code == 403
        assert c.post("/api/queue/mail/pause", headers={"X-CSRF-Token": csrf}).status_code == 200
        assert c.post("/api/queue/mail/resume", headers={"X-CSRF-Token": csrf}).status_code == 200
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    with httpx.Client(base_url=served.url, cookies=jar, timeout=30) as c:
        assert c.get("/api/queue/stats").status_code == 401  # the session is gone from Redis


def test_a_wrong_token_is_refused_on_the_sign_in_page(watched: Watched, served: Served) -> None:
    page = watched.page
    page.goto("/dashboard")
    page.get_by_label("Access token").fill("not-a-token")
    watched.allow_errors = True  # the 401 of the sign-in call is logged by the browser
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That token is not valid.")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


def test_schedules_pause_and_resume_and_the_audit_log_says_who(
    watched: Watched, served: Served, worker: Proc, graphsim: SimServer
) -> None:
    name = f"digest-{uuid.uuid4().hex[:6]}"
    with served.client(ADMIN) as c:
        body = {"cron": "0 9 * * 1-5", "type": "teams_message", "payload": {"chat_id": "19:digest", "content": "daily"}}
        reply = c.put(f"/api/schedules/{name}", json=body)
    assert reply.status_code in (200, 201), reply.text
    page = watched.page
    sign_in(page, ADMIN)
    page.get_by_role("link", name="Schedules", exact=True).click()
    row = region(page, "Schedules").get_by_role("row").filter(has=page.get_by_role("rowheader", name=name))
    row.get_by_role("button", name="Pause").click()
    expect(row).to_contain_text("paused")
    row.get_by_role("button", name="Resume").click()
    expect(row).to_contain_text("active")
    audit = region(page, "Audit log")
    expect(audit.get_by_role("row").filter(has_text=name).filter(has_text="admin")).not_to_have_count(0)


def test_the_page_says_when_the_live_connection_is_lost_and_reconnects(
    browser: Any, dash_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.api.conftest import serve
    from tests.dashboard.conftest import open_page

    first = serve(dash_redis_url, tmp_path_factory.mktemp("serve-lost") / "serve.log")
    port = first.url.rsplit(":", 1)[1]
    w = open_page(browser, first.url)
    w.allow_errors = True  # the browser logs the refused reconnects
    again: Served | None = None
    try:
        sign_in(w.page, ADMIN)
        live = w.page.locator("#live")
        expect(live).to_have_text("Live")
        first.proc.stop()
        expect(live).to_have_text(re.compile("Connection lost"), timeout=UI_TIMEOUT_MS)
        again = serve(dash_redis_url, tmp_path_factory.mktemp("serve-back") / "serve.log", port=int(port))
        expect(live).to_have_text("Live", timeout=60_000)
        expect(w.page.get_by_role("button", name="Sign out")).to_be_visible()  # the session survived (Redis)
        w.check()
    finally:
        w.context.close()
        first.proc.stop()
        if again is not None:
            again.proc.stop()


def test_every_page_passes_axe_with_no_serious_or_critical_violation(
    watched: Watched, served: Served, worker: Proc, graphsim: SimServer
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    entry = dead_letter(served, graphsim, f"19:axe-{uuid.uuid4().hex[:8]}")
    page = watched.page
    page.goto("/dashboard")
    page.get_by_role("button", name="Sign in").wait_for()
    pages: dict[str, list[str]] = {"sign-in": serious(Axe().run(page).response)}
    sign_in(page, ADMIN)
    for view in ("#/", "#/dead-letters", f"#/dead-letters/{entry}", "#/jobs", f"#/jobs/{entry}", "#/schedules"):
        page.goto(f"/dashboard{view}")
        expect(page.locator("main table, main dl, main .empty").first).to_be_visible()
        pages[view] = serious(Axe().run(page).response)
    page.goto("/dashboard#/dead-letters")
    page.get_by_role("button", name="Redrive", exact=True).click()
    expect(page.get_by_role("dialog")).to_be_visible()
    pages["redrive preview"] = serious(Axe().run(page).response)
    assert {view: found for view, found in pages.items() if found} == {}


def serious(response: dict[str, Any]) -> list[str]:
    """axe's serious and critical violations: rule id, impact and the first offending nodes."""
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes'][:3]]}"
        for v in response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_a_sync_jobs_page_shows_its_progress_and_result(
    watched: Watched, served: Served, worker: Proc, graphsim: SimServer
) -> None:
    owner = f"pat-{uuid.uuid4().hex[:6]}@contoso.com"
    for i in range(12):
        graphsim.state.delta.upsert(f"mail:{owner}:inbox", {"subject": f"m{i}"})
    with served.client(ADMIN) as c:
        reply = c.post("/api/jobs/sync", json={"resource": "mail", "owner": owner})
    assert reply.status_code == 202, reply.text
    job_id = str(reply.json()["id"])
    wait_for("the sync", lambda: completed(served, job_id))
    page = watched.page
    sign_in(page, ADMIN)
    page.goto(f"/dashboard#/jobs/{job_id}")
    status = region(page, "Status")
    expect(status.get_by_role("progressbar", name="Progress")).to_be_visible()
    expect(status).to_contain_text(re.compile(r"\d+ pages? so far"))
    expect(region(page, "Result")).to_contain_text('"created": 12')
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)  # completed: nothing to cancel


def test_a_queued_job_is_cancelled_from_its_page(
    watched: Watched, served: Served, worker: Proc, graphsim: SimServer
) -> None:
    with served.client(ADMIN) as c:
        reply = c.post("/api/jobs/teams_message", json={"chat_id": "19:later", "content": "tomorrow"},
                       params={"defer_s": 3600})  # fmt: skip
    assert reply.status_code == 202, reply.text
    job_id = str(reply.json()["id"])
    page = watched.page
    sign_in(page, ADMIN)
    page.goto(f"/dashboard#/jobs/{job_id}")
    expect(region(page, "Status")).to_contain_text("scheduled")
    page.get_by_role("button", name="Cancel job").click()
    expect(region(page, "Status")).to_contain_text("cancelled")
    assert job_status(served, job_id) == "cancelled"
