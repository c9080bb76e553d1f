"""Reading the stream worker's ``GET /status`` over HTTP (settings.worker_host/port)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from schemas.settings import Settings


class WorkerUnavailable(RuntimeError):
    """The worker did not answer; the message says where it was looked for."""


def status_url(settings: Settings, rollout: str | None = None) -> str:
    """Where /status is; with ``rollout``, the URL of that rollout's status only."""
    host = settings.worker_host
    if host in ("0.0.0.0", "::", ""):  # a bind-all address: the worker is reachable locally
        host = "127.0.0.1"
    query = "" if rollout is None else "?" + urllib.parse.urlencode({"rollout": rollout})
    return f"http://{host}:{settings.worker_port}/status{query}"


def fetch_status(
    settings: Settings, rollout: str | None = None, timeout: float = 3.0
) -> dict[str, Any]:
    """The worker's live status (of ``rollout`` only, if given), or
    :class:`WorkerUnavailable`. A rollout the worker has not seen has empty ``rollouts``
    and ``control`` and an ``error`` (the worker answers 404)."""
    url = status_url(settings, rollout)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = json.load(resp)
    except urllib.error.HTTPError as exc:
        data = _unknown_rollout(exc) if rollout is not None else None
        if data is None:
            raise WorkerUnavailable(f"{url} answered {exc.code} {exc.reason}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WorkerUnavailable(
            f"no stream worker answers at {url} ({reason}). Start it with `phasegate worker`, "
            "or set PHASEGATE_WORKER_HOST / PHASEGATE_WORKER_PORT."
        ) from None
    if not isinstance(data, dict):
        raise WorkerUnavailable(f"{url} did not return a status object")
    return data


def _unknown_rollout(exc: urllib.error.HTTPError) -> Any:
    """The body of the worker's 404 for a rollout it has not seen (None if it is not)."""
    if exc.code != 404:
        return None
    try:
        return json.load(exc)
    except ValueError:
        return None
