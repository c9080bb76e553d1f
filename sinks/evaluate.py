"""``phasegate evaluate``: the seed's ``evaluate_production_system.py --queries N --report``
over the last N stored results: per-system comparison, a winner, recommendations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.metrics import metric
from schemas.plan import Roles
from schemas.stats import Comparison
from sinks import ddl, history
from sinks.history import ErrorType, Newest, RuleStats, Side
from sinks.render import shown
from sinks.store import Store

MIN_SAMPLES = 100
ALPHA = 0.05


@dataclass(frozen=True)
class Evaluation:
    rollout: str
    last: int
    since: datetime | None  # the oldest result's time
    roles: Roles
    sides: dict[str, Side]
    tests: dict[str, Comparison | None]  # metric -> candidate minus baseline
    errors: list[ErrorType]
    rules: list[RuleStats]

    @property
    def winner(self) -> str | None:
        """The system significantly better on more of success, confidence and latency."""
        score = 0
        for name, test in self.tests.items():
            if test is None or test.p_two_sided >= ALPHA:
                continue
            lower = metric(name).lower_is_better
            better = test.difference < 0 if lower else test.difference > 0
            score += 1 if better else -1
        if score == 0:
            return None
        return self.roles.candidate if score > 0 else self.roles.baseline


def latest_rollout(store: Store, database: str) -> str | None:
    sql = f"SELECT rollout FROM {ddl.identifier(database)}.results ORDER BY ts DESC LIMIT 1"
    return store.query(sql).scalar()


def oldest(
    store: Store, database: str, rollout: str, last: int, final: bool = False
) -> datetime | None:
    """The second of the oldest of the newest ``last`` results (None: there are none)."""
    rows = Newest(last).results(database, final)
    sql = f"SELECT toUInt32(toDateTime(min(ts))), count() FROM ({rows})"
    first, n = store.query(sql, {"rollout": rollout, "last": int(last)}).rows[0]
    return datetime.fromtimestamp(first, UTC) if n else None


def evaluate(
    store: Store, database: str, rollout: str, last: int, roles: Roles, final: bool = False
) -> Evaluation:
    newest = Newest(last)
    stored = history.History(store, database, rollout, final)
    sides = stored.sides(newest)
    cand, base = sides.get(roles.candidate) or Side(None), sides.get(roles.baseline) or Side(None)
    metrics = ("success_rate", "mean_confidence", "mean_latency_ms")
    return Evaluation(
        rollout=rollout,
        last=last,
        since=oldest(store, database, rollout, last, final),
        roles=roles,
        sides=sides,
        tests={m: metric(m).compare(cand, base) for m in metrics},
        errors=stored.error_types(newest),
        rules=stored.rule_stats(newest),
    )


def recommendations(ev: Evaluation) -> list[str]:
    """What to look at, from the seed's targets (success 95%, 200 ms, confidence 0.85)."""
    out = []
    for system, side in ev.sides.items():
        r = side.results
        if r is None:
            continue
        if r.events < MIN_SAMPLES:
            out.append(f"{system}: only {r.events} results; collect at least {MIN_SAMPLES}.")
        if r.success_rate < 0.95:
            top = next((e for e in ev.errors if e.system == system), None)
            cause = f"; most frequent error: {top.type} ({top.count})" if top else ""
            out.append(f"{system}: success rate {r.success_rate:.1%} is below 95%{cause}.")
        if r.critical_errors:
            out.append(
                f"{system}: {r.critical_errors} critical errors: investigate before advancing."
            )
        if r.mean_latency_ms > 200:
            out.append(f"{system}: mean response time {r.mean_latency_ms:.0f} ms is over 200 ms.")
        if r.mean_confidence < 0.85:
            out.append(f"{system}: mean confidence {r.mean_confidence:.3f} is below 0.85.")
        for rule in ev.rules:
            rate = rule.successes / rule.uses
            if rule.system == system and rule.uses >= 20 and rate < r.success_rate - 0.1:
                out.append(
                    f"{system}: rule {rule.rule} succeeds {rate:.1%} of {rule.uses} uses "
                    f"(system {r.success_rate:.1%}): tune or disable it."
                )
    return out or ["No action needed: every system meets the targets."]


def as_text(ev: Evaluation) -> str:
    """The plain-text report (``--report FILE``)."""
    since = ev.since.strftime("%Y-%m-%d %H:%M:%S UTC") if ev.since else "-"
    lines = [
        f"Evaluation of rollout {ev.rollout}: the last {ev.last} results (since {since})",
        "",
        f"{'system':<14}{'results':>9}{'success':>10}{'confidence':>12}{'mean ms':>10}"
        f"{'p95 ms':>10}{'errors':>8}{'critical':>10}",
    ]
    for system, side in ev.sides.items():
        r = side.results
        if r is not None:
            lines.append(
                f"{system:<14}{r.events:>9}{r.success_rate:>10.2%}{r.mean_confidence:>12.3f}"
                f"{r.mean_latency_ms:>10.1f}{r.p95_latency_ms:>10.1f}{r.errors:>8}"
                f"{r.critical_errors:>10}"
            )
    lines += ["", f"{ev.roles.candidate} minus {ev.roles.baseline}:"]
    for name, test in ev.tests.items():
        if test is None:
            lines.append(f"  {name:<18} not enough data")
            continue
        unit = "%" if metric(name).unit == "share" else ""
        scale = 100 if unit else 1
        lines.append(
            f"  {name:<18}{shown(test.difference * scale, 3):+.3f}{unit}  "
            f"[{shown(test.low * scale, 3):+.3f}, {shown(test.high * scale, 3):+.3f}]  "
            f"p = {test.p_two_sided:.3g}"
        )
    winner = ev.winner
    lines += [
        "",
        f"Winner: {winner}" if winner else "Winner: none (no significant difference)",
        "",
        "Recommendations:",
        *(f"- {line}" for line in recommendations(ev)),
    ]
    return "\n".join(lines) + "\n"
