"""The go/no-go report of one phase: criteria, alerts and why, candidate vs baseline,
regression against the previous phase, errors, feedback, rules, and (HTML) charts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.alert_text import evidence, kind_text, why
from schemas.confseq import cs_z
from schemas.events import Alert
from schemas.looks import judge_phase
from schemas.metrics import Unit, metric
from schemas.plan import Phase, Roles
from schemas.stats import wilson
from schemas.verdict import DEFAULT_ALPHA, Outcome, Verdict, overall
from sinks import history, svg
from sinks.history import ErrorType, Point, RuleStats, Side, Span
from sinks.render import Block, Figure, Grid, Heading, Text, shown
from sinks.store import Store
from sinks.verdicts import data_end, replay

STEPS = (60, 300, 900, 3600, 6 * 3600, 86400)
COMPARED = ("success_rate", "mean_confidence", "mean_latency_ms", "feedback_positive_rate")
"""The metrics the report compares between systems and with the previous phase."""


class NoSuchPhase(ValueError):
    """The rollout log never started the phase and no time range was given."""


@dataclass(frozen=True)
class PhaseReport:
    rollout: str
    phase: int
    span: Span
    previous_span: Span | None
    roles: Roles
    verdicts: list[Verdict]
    sides: dict[str, Side]
    previous: dict[str, Side]
    errors: list[ErrorType]
    rules: list[RuleStats]
    points: list[Point]
    weights: list[tuple[datetime, int]]
    alerts: list[Alert]

    @property
    def outcome(self) -> Outcome:
        return overall(self.verdicts)

    def side(self, system: str, previous: bool = False) -> Side:
        return (self.previous if previous else self.sides).get(system) or Side(None)


def chart_step(span: Span, most: int = 120) -> int:
    """The smallest bucket (seconds) giving at most ``most`` points over ``span``."""
    if span.start is None or span.end is None:
        return STEPS[-1]
    seconds = (span.end - span.start).total_seconds()
    return next((s for s in STEPS if seconds / s <= most), STEPS[-1])


def phase_report(
    store: Store,
    database: str,
    rollout: str,
    phase: int,
    gate: Phase,
    roles: Roles = Roles(),
    since: datetime | None = None,
    until: datetime | None = None,
    final: bool = False,
    alpha: float = DEFAULT_ALPHA,
) -> PhaseReport:
    """Collect everything the report shows (from the rollups; ``final``: read ``FINAL``);
    ``alpha``: the plan's ``gates.alpha``."""
    stored = history.History(store, database, rollout, final)
    log = stored.log()
    span = history.phase_span(log, rollout, phase)
    if span is None and since is None and until is None:
        raise NoSuchPhase(
            f"rollout {rollout!r} has no phase_started event for phase {phase} in "
            f"{database}.rollout_events: give --since/--until for the time range"
        )
    began = span.start if span else since  # the phase's start, for min_duration and looks
    span = (span or Span()).clip(since, until)
    previous_span = history.phase_span(log, rollout, phase - 1) if phase > 1 else None
    sides = stored.sides(span, lambda events: cs_z(max(events, 1), gate.min_samples, alpha))
    previous = stored.sides(previous_span) if previous_span else {}
    candidate = sides.get(roles.candidate) or Side(None)
    before = previous.get(roles.candidate)
    minutes = stored.minutes(span)
    end = data_end(minutes)
    verdicts = judge_phase(
        gate,
        candidate,
        sides.get(roles.baseline),
        before,
        alpha=alpha,
        memory=replay(gate, minutes, began, roles, before, alpha) if began else None,
        elapsed=end - began.timestamp() if end is not None and began else None,
    )
    return PhaseReport(
        rollout=rollout,
        phase=phase,
        span=span,
        previous_span=previous_span,
        roles=roles,
        verdicts=verdicts,
        sides=sides,
        previous=previous,
        errors=stored.error_types(span),
        rules=stored.rule_stats(span),
        points=stored.series(span, chart_step(stored.time_range(span))),
        weights=history.weights(log, rollout),
        alerts=stored.alerts(span),
    )


# -- presentation -------------------------------------------------------------------


def _num(value: float | None, unit: Unit = "score") -> str:
    """``value`` as its unit is shown (``schemas.metrics.Unit``)."""
    if value is None:
        return "-"
    if unit == "share":
        return f"{shown(value, 4):.2%}"
    if unit == "ms":
        return f"{shown(value, 1):.1f}"
    if unit == "count":
        return f"{value:g}"
    return f"{shown(value, 3):.3f}"


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if t else "open"


def _interval(v: Verdict) -> str:
    if v.low is None or v.high is None or v.low == v.high:
        return "-"
    unit = metric(v.metric).unit
    return f"[{_num(v.low, unit)}, {_num(v.high, unit)}]"


def _criteria(report: PhaseReport) -> Grid:
    rows = []
    for v in report.verdicts:
        is_diff = "not worse" in v.criterion
        unit = metric(v.metric).unit
        rows.append(
            [
                v.criterion,
                ("Δ " if is_diff else "") + _num(v.observed, unit),
                _interval(v),
                ("Δ ≥ " if is_diff and v.threshold <= 0 else "Δ ≤ " if is_diff else "")
                + _num(v.threshold, unit),
                str(v.samples),
                "-" if v.p_value is None else f"{v.p_value:.3g}",
                v.outcome,
                v.note,
            ]
        )
    headers = [
        "criterion",
        "observed",
        "interval",
        "threshold",
        "samples",
        "p (worse)",
        "verdict",
        "note",
    ]
    return Grid(headers, rows, frozenset({0, 6, 7}))


def _alerts(report: PhaseReport) -> Grid:
    """The worker's alerts in the span, each with its action, evidence and why."""
    rows = [
        [
            _when(a.ts),
            a.severity,
            kind_text(a),
            a.metric,
            f"{a.observed:.4g}",
            f"{a.threshold:.4g}",
            str(a.samples),
            f"{a.action.weight_from}% to {a.action.weight_to}%" if a.action else "-",
            evidence(a),
            why(a, top=None) or "-",
        ]
        for a in report.alerts
    ]
    headers = ["time", "severity", "kind", "metric", "observed", "limit", "events", "action"]
    return Grid([*headers, "evidence", "why"], rows, frozenset({0, 1, 2, 3, 7, 8, 9}))


def _systems(sides: dict[str, Side]) -> Grid:
    rows = []
    for system, side in sides.items():
        r = side.results
        fb = side.feedback_total
        rows.append(
            [system, str(side.events)]
            + (
                [
                    _num(r.success_rate, "share"),
                    _num(r.mean_confidence),
                    _num(r.mean_latency_ms, "ms"),
                    _num(r.p95_latency_ms, "ms"),
                    str(r.errors),
                    str(r.critical_errors),
                    str(r.fallbacks),
                ]
                if r
                else ["-"] * 7
            )
            + [str(fb), _num(side.feedback.get("correct", 0) / fb, "share") if fb else "-"]
        )
    headers = [
        "system",
        "events",
        "success",
        "confidence",
        "mean ms",
        "p95 ms",
        "errors",
        "critical",
        "fallbacks",
        "feedback",
        "positive",
    ]
    return Grid(headers, rows)


def _versus(report: PhaseReport) -> list[Block]:
    cand, base = report.side(report.roles.candidate), report.side(report.roles.baseline)
    rows = []
    for name in COMPARED:
        test = metric(name).compare(cand, base)
        if test is None:
            continue
        unit = metric(name).unit
        rows.append(
            [
                name,
                _num(test.difference, unit),
                f"[{_num(test.low, unit)}, {_num(test.high, unit)}]",
                f"{shown(test.z, 2):.2f}",
                f"{test.p_two_sided:.3g}",
                "yes" if test.p_two_sided < 0.05 else "no",
            ]
        )
    text = (
        f"{report.roles.candidate} minus {report.roles.baseline} over the same span; "
        "rates by a two-proportion z-test, means by a Welch z-test."
    )
    grid = Grid(["metric", "difference", "95% interval", "z", "p (two-sided)", "significant"], rows)
    return [Heading(f"{report.roles.candidate} vs {report.roles.baseline}"), Text(text), grid]


def _regression(report: PhaseReport) -> list[Block]:
    head = Heading(f"Against phase {report.phase - 1}")
    if report.previous_span is None:
        return [head, Text("No previous phase in the rollout log.")]
    now = report.side(report.roles.candidate)
    before = report.side(report.roles.candidate, previous=True)
    rows = []
    for name in COMPARED:
        test = metric(name).compare(now, before)
        if test is None:
            continue
        unit = metric(name).unit
        worse = test.p_worse(lower_is_worse=not metric(name).lower_is_better)
        rows.append(
            [
                name,
                _num(test.difference, unit),
                f"[{_num(test.low, unit)}, {_num(test.high, unit)}]",
                f"{worse:.3g}",
                "yes" if worse < 0.05 else "no",
            ]
        )
    span = report.previous_span
    text = (
        f"{report.roles.candidate} in phase {report.phase} minus phase {report.phase - 1} "
        f"({_when(span.start)} to {_when(span.end)})."
    )
    grid = Grid(["metric", "change", "95% interval", "p (worse)", "significantly worse"], rows)
    return [head, Text(text), grid]


def worst_rules(report: PhaseReport, min_uses: int = 20) -> set[tuple[str, str]]:
    """Rules whose success rate is significantly below their system's (Wilson bound)."""
    worst = set()
    for rule in report.rules:
        side = report.side(rule.system)
        est = wilson(rule.successes, rule.uses)
        too_low = side.results and est and est.high < side.results.success_rate
        if rule.uses >= min_uses and too_low:
            worst.add((rule.system, rule.rule))
    return worst


def _rules(report: PhaseReport, top: int = 30) -> Grid:
    worst = worst_rules(report)
    rows = [
        [
            r.system,
            r.rule,
            str(r.uses),
            _num(r.successes / r.uses, "share"),
            _num(r.mean_confidence),
            "worst" if (r.system, r.rule) in worst else "",
        ]
        for r in report.rules[:top]
    ]
    return Grid(
        ["system", "rule", "uses", "success", "confidence", "mark"], rows, frozenset({0, 1, 5})
    )


def _feedback(report: PhaseReport) -> Grid:
    rows = []
    for system, side in report.sides.items():
        n = side.feedback_total
        counts = [side.feedback.get(v, 0) for v in ("correct", "incorrect", "unsure")]
        shares = [_num(c / n, "share") if n else "-" for c in counts]
        rows.append([system, str(n)] + [f"{c} ({s})" for c, s in zip(counts, shares, strict=True)])
    return Grid(["system", "verdicts", "correct", "incorrect", "unsure"], rows)


def _charts(report: PhaseReport) -> list[Block]:
    def per_system(value) -> dict[str, list[tuple[datetime, float]]]:
        out: dict[str, list[tuple[datetime, float]]] = {}
        for p in report.points:
            out.setdefault(p.system, []).append((p.at, value(p)))
        return out

    weights = [(t, float(w)) for t, w in report.weights]
    if weights and report.span.end:
        weights.append((max(report.span.end, weights[-1][0]), weights[-1][1]))
    pct = lambda v: f"{v:.1%}"  # noqa: E731
    return [
        Heading("Over time"),
        Figure(
            svg.line_chart("success rate", per_system(lambda p: p.success_rate), pct),
            "success rate per system",
        ),
        Figure(
            svg.line_chart("mean confidence", per_system(lambda p: p.mean_confidence)),
            "mean confidence per system",
        ),
        Figure(
            svg.line_chart(
                "P95 latency (ms)", per_system(lambda p: p.p95_latency_ms), lambda v: f"{v:.0f}"
            ),
            "P95 latency per system",
        ),
        Figure(
            svg.line_chart(
                "candidate weight (%)", {"weight": weights}, lambda v: f"{v:.0f}", step=True
            ),
            "candidate weight from the rollout log",
        ),
    ]


def blocks(report: PhaseReport, charts: bool = False) -> list[Block]:
    """The report as blocks (``charts``: with the SVG figures, for HTML)."""
    span = report.span
    out: list[Block] = [
        Heading(f"Rollout {report.rollout}: phase {report.phase} go/no-go", 1),
        Text(
            f"Span {_when(span.start)} to {_when(span.end)}; candidate "
            f"{report.roles.candidate}, baseline {report.roles.baseline}. "
            f"Decision: {report.outcome.upper()}."
        ),
        Heading("Criteria"),
        Text(
            "Each interval is a confidence sequence (it holds at every look at once), "
            "intersected over the looks at each minute's end as the worker does. A bound "
            "passes when the whole interval is on the right side of its threshold and "
            "fails when it is wholly on the wrong side; a comparison passes when the "
            "interval of the difference is within the margin; anything else, too few "
            "samples or a phase younger than its min_duration is inconclusive. Dry-run "
            "criteria are shown, not counted."
        ),
        _criteria(report),
        Heading("Alerts"),
        Text(
            "Why: the error types, rules and segments where the candidate's bad events "
            "exceed what the baseline's rate predicts over the alert's windows."
        ),
        _alerts(report),
        Heading("Systems"),
        _systems(report.sides),
        *_versus(report),
        *_regression(report),
        Heading("Error types"),
        Grid(
            ["system", "type", "count", "critical"],
            [[e.system, e.type, str(e.count), str(e.critical)] for e in report.errors],
            frozenset({0, 1}),
        ),
        Heading("Feedback"),
        _feedback(report),
        Heading("Rules by use"),
        Text("Marked worst: success rate significantly below the system's (Wilson 95%)."),
        _rules(report),
    ]
    return out + (_charts(report) if charts else [])
