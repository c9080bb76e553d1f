"""Which event times phasegate accepts: one rule for the worker and the sink.

Not before 1970-01-01 (ClickHouse's ``DateTime`` starts there: the server refuses the
row, and one such row would hold up every batch behind it), and not more than
``max_future`` seconds after now (it would drag the worker's watermark ahead and make
every real event late; a server's ``DateTime`` ends in 2106).
"""

from __future__ import annotations

from datetime import datetime


def ts_refusal(ts: datetime, now: float, max_future: int) -> str | None:
    """Why an event stamped ``ts`` is refused at ``now`` (epoch seconds), or None."""
    t = ts.timestamp()
    if t > now + max_future:
        return f"ts: {ts.isoformat()} is {t - now:.0f} s in the future (limit {max_future} s)"
    if t < 0:
        return f"ts: {ts.isoformat()} is before 1970-01-01 (no store keeps it)"
    return None
