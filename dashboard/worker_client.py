"""Reading the stream worker's ``GET /status`` over HTTP (settings.worker_host/port)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from schemas.settings import Settings


class WorkerUnavailable(RuntimeError):
    """The worker did not answer; the message says where it was looked for."""


def status_url(settings: Settings) -> str:
    host = settings.worker_host
    if host in ("0.0.0.0", "::", ""):  # a bind-all address: the worker is reachable locally
        host = "127.0.0.1"
    return f"http://{host}:{settings.worker_port}/status"


def fetch_status(settings: Settings, timeout: float = 3.0) -> dict[str, Any]:
    """The worker's live status, or :class:`WorkerUnavailable`."""
    url = status_url(settings)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = json.load(resp)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WorkerUnavailable(
            f"no stream worker answers at {url} ({reason}). Start it with `phasegate worker`, "
            "or set PHASEGATE_WORKER_HOST / PHASEGATE_WORKER_PORT."
        ) from None
    if not isinstance(data, dict):
        raise WorkerUnavailable(f"{url} did not return a status object")
    return data
