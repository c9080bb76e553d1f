"""The whole ``/status`` and ``/metrics``, built one rollout at a time.

Even with stage 2's kept merges (``streams.windows``, ``Stage2.gates``) every rollout
takes milliseconds to show (its windows' figures and intervals): at 1,000 rollouts,
seconds. Built in one go, that would hold the worker's event loop, which merges no
partial meanwhile; these builders give the loop a turn (``pause``) after each rollout.
Each rollout's part is consistent in itself; partials merged during a scrape show in the
rollouts built after them. ``/status?rollout=R`` stays one call
(``streams.status.status_json``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from streams.metrics import Families, render, rollout_families, worker_families
from streams.stage2 import Stage2, control_json
from streams.status import view_json

Pause = Callable[[], Awaitable[None]]
Roles = tuple[list[int], str, str]  # rolling spans, baseline, candidate


async def _turn() -> None:
    await asyncio.sleep(0)


async def status_text(
    stage2: Stage2, roles: Roles, worker: Mapping[str, Any], pause: Pause = _turn
) -> str:
    """The whole ``/status`` as JSON: ``json.dumps`` of ``status_json(stage2, None, roles,
    worker)``, rollout by rollout."""
    views, controls = [], []
    for rollout in sorted(stage2.views):
        name = json.dumps(rollout)
        views.append(f"{name}: {json.dumps(view_json(stage2.views[rollout], *roles))}")
        controls.append(f"{name}: {json.dumps(control_json(stage2, rollout))}")
        await pause()
    sections = (
        json.dumps(dict(worker))[1:-1],
        f'"rollouts": {{{", ".join(views)}}}',
        f'"control": {{{", ".join(controls)}}}',
    )
    return "{" + ", ".join(s for s in sections if s) + "}"


async def metrics_text(
    stage2: Stage2, roles: Roles, worker: Mapping[str, Any], pause: Pause = _turn
) -> str:
    """``/metrics``: ``prometheus_text`` of the whole ``/status``, rollout by rollout, without
    the tumbling windows it does not export."""
    f = Families()
    worker_families(f, worker)
    for rollout in sorted(stage2.views):
        view = view_json(stage2.views[rollout], *roles, windows=False)
        rollout_families(f, rollout, view, control_json(stage2, rollout))
        await pause()
    return render(f.by_name.values())
