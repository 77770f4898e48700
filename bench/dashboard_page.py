"""The dashboard's weight and its time to first render against a local `serve`.

    .venv/bin/python bench/dashboard_page.py [--runs 5]

Weight: every asset the page loads (HTML, JS, CSS, icon) as sent with `Accept-Encoding: gzip`, and
raw. Render: in Chromium, signed in, from navigation to the first contentful paint and to the
Queues table drawn from the API, median of --runs cold loads (a new browser context each: no
cache). Baseline, measured in the same run: the same shell loaded with scripts off (so the
ratio is what the dashboard's scripts and API calls add over its bare shell). The server is `serve --role all`
in a thread on an embedded Redis, with one job of each kind of outcome stored.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright
from pydantic import SecretStr

from graphsim.threaded_server import ThreadedServer
from graphworks.embedded_redis import start_redis
from graphworks.serve_app import build
from graphworks_core.settings import load_settings

CHROMIUM = os.environ.get("GRAPHWORKS_CHROMIUM", "/usr/bin/chromium")
TOKEN = "bench-admin-token"


def asset_paths() -> list[str]:
    """The shell and every static file the app serves (the JS modules all load on the first view)."""
    from ops.dashboard.page import load_assets

    return ["/dashboard", *(f"/dashboard/static/{name}" for name in sorted(load_assets()) if name != "index.html")]


def weigh(base: str) -> tuple[int, int, int]:
    gz = raw = count = 0
    with httpx.Client(base_url=base) as c:
        for path in asset_paths():
            zipped = c.get(path, headers={"Accept-Encoding": "gzip"})
            plain = c.get(path, headers={"Accept-Encoding": "identity"})
            assert zipped.status_code == 200 and plain.status_code == 200, path
            gz += int(zipped.headers["content-length"])
            raw += len(plain.content)
            count += 1
    return gz, raw, count


def first_paint(page: Page, fcp_js: str) -> float:
    """The page's first contentful paint (ms), once the browser has recorded it."""
    for _ in range(200):
        value = float(page.evaluate(fcp_js))
        if not math.isnan(value):
            return value
        page.wait_for_timeout(25)  # polling for the browser's own record, not standing in for time
    raise RuntimeError("no first-contentful-paint entry")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis = start_redis(Path(tmp) / "redis")
        settings = load_settings(redis_url=redis.url, admin_token=SecretStr(TOKEN), graph_static_token="x")
        server = ThreadedServer(build(settings), name="serve", lifespan="on").start()
        try:
            gz, raw, count = weigh(server.url)
            print(f"weight: {count} files, {gz / 1024:.1f} KiB gzip ({raw / 1024:.1f} KiB raw)")
            fcp_js = "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN"
            dash_fcp, dash_ready, base_fcp = [], [], []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                signing = browser.new_context(base_url=server.url)
                page = signing.new_page()
                page.goto("/dashboard")
                page.get_by_label("Access token").fill(TOKEN)
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("button", name="Sign out").wait_for()
                cookies = signing.cookies()
                signing.close()
                for _ in range(args.runs):
                    context = browser.new_context(base_url=server.url)  # cold: no cache
                    context.add_cookies(cookies)
                    page = context.new_page()
                    page.goto("/dashboard")
                    page.get_by_role("region", name="Queues").get_by_role("table").wait_for()
                    dash_ready.append(page.evaluate("performance.now()"))
                    dash_fcp.append(page.evaluate(fcp_js))
                    context.close()
                    # Baseline: the same shell and stylesheet with scripts off (paints "Loading…").
                    bare = browser.new_context(base_url=server.url, java_script_enabled=False)
                    page = bare.new_page()
                    page.goto("/dashboard")
                    base_fcp.append(first_paint(page, fcp_js))
                    bare.close()
                browser.close()
            fcp, ready, base = statistics.median(dash_fcp), statistics.median(dash_ready), statistics.median(base_fcp)
            print(f"first contentful paint: {fcp:.0f} ms; Queues table drawn from the API: {ready:.0f} ms "
                  f"(median of {args.runs} cold loads)")  # fmt: skip
            print(f"baseline, the shell with scripts off: first paint {base:.0f} ms; table drawn / baseline "
                  f"paint = {ready / base:.1f}, first paint / baseline = {fcp / base:.1f}")  # fmt: skip
        finally:
            server.stop()
            redis.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
