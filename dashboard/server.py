"""The dashboard's HTTP server: the page and its assets, and a small JSON API.

Standard library only (``http.server.ThreadingHTTPServer``): one page, three assets and
four routes need no framework, and every request is answered from memory or by one
HTTP call to the worker.

Routes::

    GET  /                                  the page (assets under /static/)
    GET  /api/summary?span=300              everything the page shows (JSON)
    GET  /api/status                        the worker's /status, passed through
    POST /api/rollouts/<rollout>/<action>   start | set_weight | promote | hold | rollback
                                            body {"weight", "to_phase", "reason", "actor",
                                            "confirm", "force"} (rollout.steering decides)

When ``settings.dashboard_token`` is set, every ``/api/`` request must carry it in the
``X-Phasegate-Token`` header (401 otherwise). A POST must be ``application/json`` and,
if the browser sends an ``Origin``, come from this page's own origin: another site
cannot change the weight through the operator's browser.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from dashboard.service import Dashboard
from rollout.steering import Refused
from rollout.writer import NotWritten

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Phasegate-Token"
MAX_BODY = 16 * 1024
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS = {
    # Everything comes from this server: no CDN, no inline script.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def asset(name: str) -> bytes:
    return (resources.files("dashboard") / "static" / name).read_bytes()


class Handler(BaseHTTPRequestHandler):
    """One request; ``server.dashboard`` holds the data (see :func:`make_server`)."""

    server: DashboardServer
    server_version = "phasegate-dashboard"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # -- responses ----------------------------------------------------------------------
    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, data: Any) -> None:
        self._send(code, json.dumps(data).encode(), "application/json")

    def _error(self, code: int, message: str) -> None:
        self._json(code, {"error": message})

    # -- checks -------------------------------------------------------------------------
    def _authorized(self) -> bool:
        token = self.server.dashboard.settings.dashboard_token
        if not token:
            return True
        given = self.headers.get(TOKEN_HEADER, "")
        if hmac.compare_digest(given.encode(), token.encode()):
            return True
        self._error(
            HTTPStatus.UNAUTHORIZED, "this dashboard needs its token (PHASEGATE_DASHBOARD_TOKEN)"
        )
        return False

    def _same_origin(self) -> bool:
        origin = self.headers.get("Origin")
        if origin is None or origin == f"http://{self.headers.get('Host', '')}":
            return True
        self._error(HTTPStatus.FORBIDDEN, f"requests from {origin} are not accepted")
        return False

    def _body(self) -> dict[str, Any] | None:
        kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the action as application/json")
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._error(HTTPStatus.BAD_REQUEST, f"the body must be 0 to {MAX_BODY} bytes")
            return None
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._error(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
            return None
        return body

    # -- routes -------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        dash = self.server.dashboard
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, asset("index.html"), ASSETS["index.html"])
        elif path.startswith("/static/") and path.removeprefix("/static/") in ASSETS:
            name = path.removeprefix("/static/")
            self._send(HTTPStatus.OK, asset(name), ASSETS[name])
        elif path == "/api/summary":
            if self._authorized():
                span = parse_qs(url.query).get("span", [""])[0]
                self._json(HTTPStatus.OK, dash.snapshot(int(span) if span.isdigit() else None))
        elif path == "/api/status":
            if self._authorized():
                status, error = dash.status()
                if status is None:
                    self._error(HTTPStatus.BAD_GATEWAY, error or "no worker")
                else:
                    self._json(HTTPStatus.OK, status)
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def do_POST(self) -> None:
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["api", "rollouts"]:
            self._error(HTTPStatus.NOT_FOUND, "POST /api/rollouts/<rollout>/<action>")
            return
        if not (self._authorized() and self._same_origin()):
            return
        body = self._body()
        if body is None:
            return
        rollout, action = unquote(parts[2]), parts[3]
        try:
            event = self.server.dashboard.act(rollout, action, body)
        except Refused as exc:
            self._error(HTTPStatus.UNPROCESSABLE_ENTITY, str(exc))
        except NotWritten as exc:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        else:
            log.info(
                "rollout %s: %s by %s (weight %s): %s",
                rollout,
                event.type,
                event.actor,
                event.weight,
                event.reason,
            )
            self._json(HTTPStatus.OK, {"event": event.model_dump(mode="json", by_alias=True)})


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], dashboard: Dashboard) -> None:
        super().__init__(address, Handler)
        self.dashboard = dashboard

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


def make_server(dashboard: Dashboard, host: str, port: int) -> DashboardServer:
    """Bind the server (port 0: a free one); serve it with ``serve_forever``."""
    return DashboardServer((host, port), dashboard)


def serve_in_thread(server: DashboardServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="dashboard-http", daemon=True)
    thread.start()
    return thread
