"""Remake the README's dashboard screenshots from a `graphworks demo --hold` run.

    .venv/bin/python docs/screenshots.py   # writes docs/dashboard-overview.png and docs/dashboard-dead-letters.png

It starts the demo (an embedded Redis, graphsim, the dashboard), waits for it to hold, signs in with
the token the demo prints, takes the two pages in Debian's Chromium (/usr/bin/chromium, or
GRAPHWORKS_CHROMIUM), then stops the demo with SIGTERM. Nothing here is staged: the pages show what
the demo's own jobs left behind.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("GRAPHWORKS_CHROMIUM", "/usr/bin/chromium")
HOLD_LIMIT_S = 180.0
VIEWPORT = {"width": 1360, "height": 900}


def start_demo(data_dir: str) -> tuple[subprocess.Popen[str], str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "ADMIN_TOKEN")}
    env["COLUMNS"] = "200"  # one line per message, for the parse below
    demo = subprocess.Popen([sys.executable, "-m", "graphworks", "demo", "--hold", "--data-dir", data_dir],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    assert demo.stdout is not None
    url = token = None
    deadline = time.monotonic() + HOLD_LIMIT_S
    for line in demo.stdout:
        print(f"  demo| {line}", end="")
        found = re.search(r"dashboard: (\S+/dashboard)\s+token: (\S+)", line)
        if found:
            url, token = found.groups()
        if "Ctrl-C" in line and url and token:
            return demo, url, token
        if time.monotonic() > deadline:
            break
    demo.kill()
    raise SystemExit("the demo did not reach --hold with a dashboard URL and token")


def settle(page: Page, text: str) -> None:
    page.get_by_text(text).first.wait_for(timeout=60_000)
    page.wait_for_timeout(600)  # let the charts and counters of the last refresh paint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE, help="where the PNGs go (default: docs/)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="graphworks-shots-") as data_dir:
        demo, url, token = start_demo(data_dir)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                page = browser.new_page(viewport=VIEWPORT, color_scheme="light")
                page.goto(url)
                page.get_by_label("Access token").fill(token)
                page.get_by_role("button", name="Sign in").click()
                # The held worker dead-letters the jobs left for the page; wait until the store shows them.
                page.get_by_role("region", name="Dead letters").get_by_text("ErrorInvalidUser").wait_for(timeout=60_000)
                settle(page, "teams_message")
                page.screenshot(path=str(args.out / "dashboard-overview.png"), full_page=True)
                page.get_by_role("link", name="Dead letters", exact=True).click()
                settle(page, "Groups by cause")
                page.screenshot(path=str(args.out / "dashboard-dead-letters.png"), full_page=True)
                browser.close()
        finally:
            demo.send_signal(signal.SIGTERM)
            demo.wait(30)
    print(f"wrote {args.out / 'dashboard-overview.png'} and {args.out / 'dashboard-dead-letters.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
