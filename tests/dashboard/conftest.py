"""The dashboard in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium) against a
real `graphworks serve`, a real `graphworks worker` and graphsim, on a database of its own.

No browser is not a skip: `./dev test` installs Debian's chromium when it is missing, and a machine
where that cannot happen fails here, saying so (DESIGN.md, "Testing"). Every page a test opens is
watched: a console error, an uncaught exception or a Content-Security-Policy violation fails the test
at teardown, whatever it asserted.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, sync_playwright

from graphsim.server import SimServer
from tests.api.conftest import Proc, Served, serving, with_db, working

pytestmark = pytest.mark.slow

OWN_DB = 6  # this package's database on the session's Redis (tests/api use 3 and 7, tests/fuzz 11)
CHROMIUM = os.environ.get("GRAPHWORKS_CHROMIUM", "/usr/bin/chromium")
UI_TIMEOUT_MS = 30_000  # how long the page may take to show what a test waits for, on a loaded machine

# Watches every page: CSP violations as the page's own event reports them, before any script runs.
WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""


@pytest.fixture(scope="session")
def chromium() -> str:
    path = CHROMIUM if os.path.isabs(CHROMIUM) else shutil.which(CHROMIUM)
    if not path or not os.access(path, os.X_OK):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: the dashboard's browser tests need Debian's chromium "
            "(`./dev test` installs it with apt-get when it can; else `apt-get install chromium`)"
        )
    return path


# Module-scoped, not session: Playwright's sync API keeps an event loop of its own running in this
# thread while it is started, which the async tests after this folder could not share.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright, chromium: str) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def dash_redis_url(redis_url: str) -> str:
    return with_db(redis_url, OWN_DB)


@pytest.fixture(scope="module")
def served(dash_redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(dash_redis_url, tmp_path_factory) as s:
        yield s


@pytest.fixture(scope="module")
def worker(dash_redis_url: str, graphsim_server: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    with working(dash_redis_url, graphsim_server, tmp_path_factory) as proc:
        yield proc


@dataclass
class Watched:
    """A page and what it reported: console errors, uncaught exceptions."""

    page: Page
    context: BrowserContext
    errors: list[str] = field(default_factory=list)
    allow_errors: bool = False

    def csp_violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__cspViolations || []")
        return found

    def check(self) -> None:
        if self.page.is_closed():
            return
        assert self.csp_violations() == [], "Content-Security-Policy violations"
        if not self.allow_errors:
            assert self.errors == [], "the page logged errors"


def open_page(browser: Browser, base_url: str) -> Watched:
    context = browser.new_context(base_url=base_url)
    context.add_init_script(WATCH)
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    watched = Watched(page, context)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(f"console: {message.text} ({message.location})")

    page.on("console", console)
    page.on("pageerror", lambda exc: watched.errors.append(f"uncaught: {exc}"))
    return watched


@pytest.fixture
def watched(browser: Browser, served: Served) -> Iterator[Watched]:
    w = open_page(browser, served.url)
    try:
        yield w
        w.check()
    finally:
        w.context.close()


def sign_in(page: Page, token: str) -> None:
    page.goto("/dashboard")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()
