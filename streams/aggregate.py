"""The per-window aggregate of one system: sums and counts that merge by adding."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import reduce
from itertools import chain, compress
from operator import add, mul

from schemas.events import Feedback, Result
from schemas.internal import RuleState, SegmentState, WindowStatsState
from streams.sketch import LatencySketch

TOP_RULES = 10


class WindowStats:
    """Everything phasegate knows about one system in one window.

    ``update`` takes one event, ``merge`` adds another aggregate; both are exact for all
    counts and sums, and the latency sketch keeps quantiles within 1%.
    """

    __slots__ = (
        "confidence_sq_sum",
        "confidence_sum",
        "count",
        "critical",
        "errors",
        "fallbacks",
        "feedback",
        "late",
        "latency",
        "latency_sq_sum",
        "latency_sum",
        "rule_confidence",
        "rule_successes",
        "rule_uses",
        "segment_bad",
        "segment_confidence",
        "segment_events",
        "successes",
        "weights",
    )

    def __init__(self) -> None:
        self.count = 0
        self.successes = 0
        self.confidence_sum = 0.0
        self.confidence_sq_sum = 0.0
        self.latency_sum = 0.0
        self.latency_sq_sum = 0.0
        self.latency = LatencySketch()
        self.errors: Counter[str] = Counter()
        self.critical = 0
        self.fallbacks = 0
        self.feedback: Counter[str] = Counter()
        self.rule_uses: Counter[str] = Counter()
        self.rule_successes: Counter[str] = Counter()
        self.rule_confidence: dict[str, float] = {}  # confidence summed over a rule's uses
        self.late = 0
        self.weights: Counter[int] = Counter()
        self.segment_events: Counter[str] = Counter()  # results with a segment label
        self.segment_bad: Counter[str] = Counter()
        self.segment_confidence: dict[str, float] = {}

    # -- updates ---------------------------------------------------------------------
    def update(self, result: Result) -> None:
        self.add_results((result,))

    def add_results(self, results: Sequence[Result]) -> None:
        """Add a batch of results (the models or ``schemas.fastcodec``'s Structs of them:
        the same fields), a pass a field; float sums add in order, as one by one."""
        ok = [r.success for r in results]
        confidences = [r.confidence for r in results]
        latencies = [r.latency_ms for r in results]
        self.count += len(results)
        self.successes += sum(ok)
        self.confidence_sum = reduce(add, confidences, self.confidence_sum)
        self.confidence_sq_sum = reduce(
            add, map(mul, confidences, confidences), self.confidence_sq_sum
        )
        self.latency_sum = reduce(add, latencies, self.latency_sum)
        self.latency_sq_sum = reduce(add, map(mul, latencies, latencies), self.latency_sq_sum)
        self.latency.update_many(latencies)
        errors = [r.error for r in results if r.error is not None]
        if errors:
            self.errors.update([e.type for e in errors])
            self.critical += sum([e.critical for e in errors])
        self.fallbacks += sum([r.fallback for r in results])
        self.weights.update([r.weight for r in results])
        rules = [r.rules for r in results]
        self.rule_uses.update(chain.from_iterable(rules))
        self.rule_successes.update(chain.from_iterable(compress(rules, ok)))
        _add(self.rule_confidence, rules, confidences)
        segments = [r.segment for r in results]
        if any(segments):
            has = [s is not None for s in segments]
            labelled = list(compress(segments, has))
            self.segment_events.update(labelled)
            self.segment_bad.update(
                [s for s, good in zip(labelled, compress(ok, has), strict=True) if not good]
            )
            _add(self.segment_confidence, zip(labelled), compress(confidences, has))

    def update_feedback(self, feedback: Feedback) -> None:
        self.add_feedback((feedback,))

    def add_feedback(self, feedback: Sequence[Feedback]) -> None:
        """Add a batch of feedback (the models or their Structs)."""
        self.feedback.update([f.verdict for f in feedback])

    def merge(self, other: WindowStats) -> WindowStats:
        """Add ``other`` into this aggregate; return self."""
        self.count += other.count
        self.successes += other.successes
        self.confidence_sum += other.confidence_sum
        self.confidence_sq_sum += other.confidence_sq_sum
        self.latency_sum += other.latency_sum
        self.latency_sq_sum += other.latency_sq_sum
        self.latency.merge(other.latency)
        self.errors.update(other.errors)
        self.critical += other.critical
        self.fallbacks += other.fallbacks
        self.feedback.update(other.feedback)
        self.rule_uses.update(other.rule_uses)
        self.rule_successes.update(other.rule_successes)
        _merge(self.rule_confidence, other.rule_confidence)
        self.late += other.late
        self.weights.update(other.weights)
        self.segment_events.update(other.segment_events)
        self.segment_bad.update(other.segment_bad)
        _merge(self.segment_confidence, other.segment_confidence)
        return self

    @classmethod
    def merged(cls, parts: list[WindowStats]) -> WindowStats:
        total = cls()
        for part in parts:
            total.merge(part)
        return total

    # -- what the user sees (``schemas.metrics.Totals``) ---------------------------------
    @property
    def events(self) -> int:
        return self.count

    @property
    def critical_errors(self) -> int:
        return self.critical

    def latency_quantile(self, q: float) -> float | None:
        return self.latency.quantile(q)

    def latency_quantiles(self, levels: Sequence[float]) -> list[float | None]:
        return self.latency.quantiles(levels)

    def top_rules(self, n: int = TOP_RULES) -> list[tuple[str, int, float]]:
        """The ``n`` most used rules as (name, uses, success rate)."""
        return [
            (rule, uses, self.rule_successes[rule] / uses)
            for rule, uses in self.rule_uses.most_common(n)
        ]

    # -- wire form -----------------------------------------------------------------
    def to_state(self) -> WindowStatsState:
        return WindowStatsState(
            count=self.count,
            successes=self.successes,
            confidence_sum=self.confidence_sum,
            confidence_sq_sum=self.confidence_sq_sum,
            latency_sum=self.latency_sum,
            latency_sq_sum=self.latency_sq_sum,
            latency=self.latency.to_state() if self.latency.count else None,
            errors=dict(self.errors),
            critical=self.critical,
            fallbacks=self.fallbacks,
            feedback=dict(self.feedback),
            rules={
                r: RuleState(
                    uses=u,
                    successes=self.rule_successes[r],
                    confidence=self.rule_confidence.get(r, 0.0),
                )
                for r, u in self.rule_uses.items()
            },
            late=self.late,
            weights=dict(self.weights),
            segments={
                s: SegmentState(
                    events=n,
                    bad=self.segment_bad[s],
                    confidence=self.segment_confidence.get(s, 0.0),
                )
                for s, n in self.segment_events.items()
            },
        )

    @classmethod
    def from_state(cls, state: WindowStatsState) -> WindowStats:
        stats = cls()
        stats.count = state.count
        stats.successes = state.successes
        stats.confidence_sum = state.confidence_sum
        stats.confidence_sq_sum = state.confidence_sq_sum
        stats.latency_sum = state.latency_sum
        stats.latency_sq_sum = state.latency_sq_sum
        if state.latency is not None:
            stats.latency = LatencySketch.from_state(state.latency)
        stats.errors = Counter(state.errors)
        stats.critical = state.critical
        stats.fallbacks = state.fallbacks
        stats.feedback = Counter(state.feedback)
        stats.rule_uses = Counter({r: s.uses for r, s in state.rules.items()})
        stats.rule_successes = Counter({r: s.successes for r, s in state.rules.items()})
        stats.rule_confidence = {r: s.confidence for r, s in state.rules.items()}
        stats.late = state.late
        stats.weights = Counter(state.weights)
        stats.segment_events = Counter({s: c.events for s, c in state.segments.items()})
        stats.segment_bad = Counter({s: c.bad for s, c in state.segments.items() if c.bad})
        stats.segment_confidence = {s: c.confidence for s, c in state.segments.items()}
        return stats


def _add(sums: dict[str, float], keys: Iterable[Iterable[str]], values: Iterable[float]) -> None:
    """Add each value to the sum of each of its keys, in order (the float sums of one by
    one); a plain dict: twice as fast as a Counter here, on the hot path."""
    get = sums.get
    for ks, value in zip(keys, values, strict=True):
        for k in ks:
            sums[k] = get(k, 0.0) + value


def _merge(sums: dict[str, float], other: dict[str, float]) -> None:
    for k, value in other.items():
        sums[k] = sums.get(k, 0.0) + value
