"""The operator's page at /dashboard: one HTML shell and its assets, all served from this package.

    GET /dashboard             the shell (static/index.html); everything else is drawn by static/*.js
                               from the Ops API, so the page has no data access of its own
    GET /dashboard/static/F    an asset: ETag, gzip when the browser takes it, revalidated on each load
    *   /dashboard/session     sign in and out (ops/session.py)

Every response carries a strict Content-Security-Policy (no inline script or style, nothing from
another origin), so an injected string in a payload or an error message cannot run. No build step:
the files are plain ES modules and CSS, loaded as they are in the package.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ops.guard import header, respond_json
from ops.session import SESSION_PATH, SessionEndpoint

PREFIX = "/dashboard"
STATIC = f"{PREFIX}/static/"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}  # fmt: skip


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every file of static/, read and compressed once at startup."""
    found: dict[str, Asset] = {}
    root = resources.files("ops.dashboard").joinpath("static")
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        for entry in folder.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                stack.append((entry, name + "/"))
                continue
            body = entry.read_bytes()
            suffix = "." + name.rsplit(".", 1)[-1]
            media = TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            found[name] = Asset(body, gzip.compress(body, 9, mtime=0), media, etag)
    return found


class DashboardApp:
    def __init__(self, sessions: SessionEndpoint) -> None:
        self.sessions = sessions
        self.assets = load_assets()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path == SESSION_PATH:
            await self.sessions(scope, receive, _secured(send))
            return
        if scope["method"].upper() not in ("GET", "HEAD"):
            await respond_json(_secured(send), 405, {"detail": "the page is read with GET"}, (("Allow", "GET"),))
            return
        name = (
            "index.html" if path in (PREFIX, PREFIX + "/") else path[len(STATIC) :] if path.startswith(STATIC) else ""
        )
        asset = self.assets.get(name)
        if asset is None:
            await respond_json(_secured(send), 404, {"detail": f"no such page: {path}"})
            return
        await self._asset(scope, send, asset)

    async def _asset(self, scope: Scope, send: Send, asset: Asset) -> None:
        head: list[tuple[bytes, bytes]] = [
            (b"content-type", asset.media_type.encode()),
            (b"etag", asset.etag.encode()),
            (b"cache-control", b"no-cache"),  # revalidate: an upgrade is seen at the next load
            (b"vary", b"accept-encoding"),
        ]
        if header(scope, b"if-none-match") == asset.etag:
            await _secured(send)({"type": "http.response.start", "status": 304, "headers": head})
            await send({"type": "http.response.body", "body": b""})
            return
        body = asset.body
        if "gzip" in (header(scope, b"accept-encoding") or ""):
            body = asset.gzipped
            head.append((b"content-encoding", b"gzip"))
        head.append((b"content-length", str(len(body)).encode()))
        await _secured(send)({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": b"" if scope["method"].upper() == "HEAD" else body})


def _secured(send: Send) -> Send:
    """`send` with the security headers added to the response start."""

    async def secured(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
        await send(message)

    return secured


class WithDashboard:
    """`/dashboard*` to the page, `/` redirected to it, everything else to `api`."""

    def __init__(self, dashboard: ASGIApp, api: ASGIApp) -> None:
        self.dashboard = dashboard
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.dashboard(scope, receive, send)
        elif scope["type"] == "http" and path == "/" and scope["method"].upper() in ("GET", "HEAD"):
            await send({"type": "http.response.start", "status": 307, "headers": [(b"location", PREFIX.encode())]})
            await send({"type": "http.response.body", "body": b""})
        else:
            await self.api(scope, receive, send)
