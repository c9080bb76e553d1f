"""The rollout plan as data: phases, their gates, rollback triggers, roles, announcements.

A plan is a TOML, YAML or JSON file validated by :class:`Plan`; :func:`load_plan` reads
one (``None``: the packaged default, ``schemas/plans/default.toml``, which is the seed's
four phases and rollback rules). Every part (stream worker, CLI, reports) reads the same
model, so another rollout changes phases, metrics and thresholds without code changes.

Phases are numbered from 1 in file order; phase 0 means "not running" (weight 0).
"""

from __future__ import annotations

import json
import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from schemas.metrics import NAMES, QUANTILES, TRIGGER_NAMES, Mean, metric, quantile_of

DEFAULT_PLAN = "default.toml"

GateMetric = Literal[NAMES]  # type: ignore[valid-type]
TriggerMetric = Literal[TRIGGER_NAMES]  # type: ignore[valid-type]
FIXED_LIMIT = ("success_rate", *QUANTILES, "critical_errors")
"""The metrics a fixed-limit trigger counts bad events of (the others: guardrails only)."""

Share = Annotated[float, Field(ge=0.0, le=1.0)]
Texts = dict[str, str]  # language -> text


class PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value: Any) -> Any:
    """Seconds of ``"14d"``, ``"36h"``, ``"90m"`` or ``"30s"``; a number is seconds already."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    unit = DURATION_UNITS.get(text[-1:])
    if unit is None or not text[:-1].isdigit():
        raise ValueError(f"{value!r} is not a duration like 14d, 36h, 90m or 30s")
    return int(text[:-1]) * unit


Duration = Annotated[int, BeforeValidator(parse_duration), Field(ge=0)]
"""Whole seconds, written as ``"14d"``, ``"36h"``, ``"90m"`` or ``"30s"`` in a plan."""


def format_duration(seconds: float) -> str:
    """``"3d 4h"``, ``"5h 12m"``, ``"12m"``: the two largest units, rounded up to a minute."""
    minutes = math.ceil(max(0.0, seconds) / 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{mins}m"] * bool(mins)
    return " ".join(parts[:2]) or "0m"


class Criterion(PlanModel):
    """One condition to advance: ``min`` / ``max`` bound, or a comparison (``compare``).

    ``compare = "baseline"``: the candidate against the baseline on the same window;
    ``"previous_phase"``: the candidate now against the candidate in the phase before.
    Both may be worse by ``margin`` at most (in the metric's unit). ``dry_run``: judged
    and shown, marked dry-run, never counted in the phase's outcome.
    """

    metric: GateMetric
    min: float | None = None
    max: float | None = None
    compare: Literal["baseline", "previous_phase"] | None = None
    margin: Annotated[float, Field(ge=0.0)] = 0.0
    dry_run: bool = False

    @model_validator(mode="after")
    def _one_rule(self) -> Criterion:
        given = [k for k in ("min", "max", "compare") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of min, max, compare (got {given or 'none'})")
        meaning = metric(self.metric)
        if self.compare and not meaning.comparable:
            raise ValueError(f"compare works on rates and means, not {self.metric}")
        if meaning.unit == "count" and self.min is not None:
            raise ValueError(f"{self.metric} is a count not to exceed: give `max`")
        if meaning.unit == "share" and not 0 <= (self.min or self.max or 0) <= 1:
            raise ValueError(f"{self.metric} is a share between 0 and 1")
        return self

    @property
    def label(self) -> str:
        if self.compare:
            what = "the baseline" if self.compare == "baseline" else "the previous phase"
            margin = f" (margin {self.margin:g})" if self.margin else ""
            return f"{self.metric} not worse than {what}{margin}"
        if metric(self.metric).unit == "count" and self.max == 0:
            return f"no {metric(self.metric).title}"
        return (
            f"{self.metric} >= {self.min:g}"
            if self.min is not None
            else (f"{self.metric} <= {self.max:g}")
        )


class Trigger(PlanModel):
    """A rollback trigger watched continuously with the sequential rule (``Sequential``).

    ``success_rate``: fires when the success rate is ``below`` the limit; ``acceptable``
    is the rate that must (almost) never fire (default ``below`` + 0.05).
    ``pNN_latency_ms``: fires when that quantile is ``above`` the limit, i.e. more than
    ``1 - NN/100`` of the events are slower; ``bad_share`` is the share of slower events
    that counts as clearly over (default twice the allowed share).
    ``critical_errors``: fires on more than ``above`` (default 0) critical errors.

    ``compare = "baseline"`` makes it a guardrail: the candidate against the baseline on
    the same windows (``streams.guardrails``); ``mean_confidence``, ``complaint_rate``
    and ``feedback_positive_rate`` are guardrails only. ``margin`` is the worsening
    tolerated: for a rate in points of its bad share (failures; complaints; feedback
    other than "correct"), for ``mean_confidence`` in points of confidence, for a
    latency quantile in ms; ``relative``: a share of the baseline's value. ``detect`` is
    the worsening to catch quickly (default margin + 0.02 for a rate, relative: margin
    + 1; margin + 0.05 for confidence); for latency ``bad_share`` plays that part.
    ``on_shared``: what a rollback does when the baseline degraded in the same windows
    (``hold``: alert, critical, no action). ``dry_run``: judged and alerted, never acted on.
    """

    name: Annotated[str, Field(min_length=1, max_length=64)]
    action: Literal["emergency", "partial"]
    metric: TriggerMetric
    below: Share | None = None
    acceptable: Share | None = None
    above: Annotated[float, Field(ge=0.0)] | None = None
    bad_share: Share | None = None
    min_samples: Annotated[int, Field(ge=1)] = 100
    compare: Literal["baseline"] | None = None
    margin: Annotated[float, Field(ge=0.0)] = 0.0
    relative: bool = False
    detect: Annotated[float, Field(gt=0.0)] | None = None
    on_shared: Literal["hold", "rollback"] = "hold"
    dry_run: bool = False

    @property
    def guardrail(self) -> bool:
        """Judged against the baseline (``compare = "baseline"``)."""
        return self.compare == "baseline"

    @property
    def _falls(self) -> bool:
        """Fires when the metric falls (a share where higher is better: ``below``)."""
        return metric(self.metric).better == "higher"

    @property
    def _mean(self) -> bool:
        """A mean where lower is worse (``mean_confidence``): the margin lowers it."""
        return isinstance(metric(self.metric).estimator, Mean)

    @model_validator(mode="after")
    def _complete(self) -> Trigger:
        if self.guardrail:
            return self._differential()
        if self.margin or self.relative or self.detect is not None:
            raise ValueError('margin, relative and detect need compare = "baseline"')
        if self.metric not in FIXED_LIMIT:
            raise ValueError(
                f'{self.metric} has no fixed-limit trigger: give compare = "baseline" and a '
                f"margin (fixed limits: {', '.join(FIXED_LIMIT)})"
            )
        if self._falls:
            if self.below is None or self.above is not None:
                raise ValueError(f"{self.metric} triggers take `below` (and `acceptable`)")
            if self.acceptable is not None and self.acceptable <= self.below:
                raise ValueError("acceptable must be above `below`")
        elif metric(self.metric).unit == "count":
            if self.below is not None:
                raise ValueError(f"{self.metric} triggers take `above` (default 0)")
        else:
            if self.above is None or self.below is not None:
                raise ValueError(f"{self.metric} triggers take `above` (milliseconds)")
            allowed = 1 - quantile_of(self.metric)
            if self.bad_share is not None and self.bad_share <= allowed:
                raise ValueError(f"bad_share must exceed the allowed share {allowed:g}")
        return self

    def _differential(self) -> Trigger:
        if metric(self.metric).unit == "count":
            raise ValueError(f"{self.metric} has no baseline comparison: give `above`")
        if (self.below, self.above, self.acceptable) != (None, None, None):
            raise ValueError("a guardrail takes margin (and detect), not below/above/acceptable")
        if self.metric in QUANTILES:
            if self.detect is not None:
                raise ValueError("latency guardrails take bad_share, not detect")
            allowed = 1 - quantile_of(self.metric)
            if self.bad_share is not None and self.bad_share <= allowed:
                raise ValueError(f"bad_share must exceed the allowed share {allowed:g}")
            return self
        if self.bad_share is not None:
            raise ValueError(f"bad_share is for latency; {self.metric} guardrails take detect")
        if self.detect is not None and self.detect <= self.margin:
            raise ValueError("detect must exceed margin")
        if (not self.relative or self._mean) and self.detect_by >= 1:
            raise ValueError(f"{self.metric}: margin and detect are shares below 1 here")
        return self

    def worse(self, base: float, by: float | None = None) -> float:
        """The baseline's ``base`` worsened by ``by`` (default: the margin), absolute or
        relative as the plan says: a bad share or a latency quantile raised, a mean
        confidence lowered."""
        by = self.margin if by is None else by
        step = base * by if self.relative else by
        return base - step if self._mean else base + step

    @property
    def detect_by(self) -> float:
        """The worsening a rate or confidence guardrail is tuned to catch."""
        if self.detect is not None:
            return self.detect
        if self._mean:
            return self.margin + 0.05
        return self.margin + (1.0 if self.relative else 0.02)

    @property
    def limit(self) -> float:
        if self.guardrail:
            return self.margin
        if self._falls:
            return self.below  # type: ignore[return-value]
        return self.above or 0.0

    def shares(self) -> tuple[float, float]:
        """(acceptable, alarm) share of "bad" events: failures, or events over the limit.

        For a latency guardrail: the baseline's share over its quantile, and the
        candidate's share over the worsened quantile that must fire."""
        if self._falls and not self.guardrail:
            ok = self.acceptable if self.acceptable is not None else min(0.999, self.limit + 0.05)
            return 1 - ok, 1 - self.limit
        allowed = 1 - quantile_of(self.metric)
        return allowed, self.bad_share if self.bad_share is not None else min(0.999, 2 * allowed)


class Sequential(PlanModel):
    """The decision rule of the statistical triggers: a CUSUM of likelihood ratios.

    It fires when the log-likelihood ratio of "alarm" over "acceptable" since its last
    zero reaches ``threshold = ln(horizon * k / false_alarm)`` (k: statistical triggers).
    For any traffic at least as good as "acceptable", the chance of a false alarm within
    the first ``horizon`` candidate events is then at most ``false_alarm`` in total
    (Ville's inequality for each start, and a union bound over starts and triggers).
    A guardrail adds its evidence in steps of at least ``min_samples`` candidate samples
    (events; feedback verdicts for feedback), so it has ``horizon / min_samples`` starts
    to take the union over.
    """

    false_alarm: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.01
    horizon: Annotated[int, Field(ge=1)] = 1_000_000

    def threshold(self, triggers: int = 1, step: int = 1) -> float:
        """The CUSUM's threshold; ``step``: candidate events each look adds at least (a
        guardrail looks once per ``min_samples``: fewer starts to take the union over)."""
        return math.log(self.horizon / max(1, step) * max(1, triggers) / self.false_alarm)


class SampleRatio(PlanModel):
    """Warn when the split of units since a person's last change contradicts the weight.

    A mixture SPRT (``streams.sample_ratio``): a healthy rollout warns with probability
    at most ``p_value`` per change, however long it runs; never before ``min_samples``
    units.
    """

    p_value: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.001
    min_samples: Annotated[int, Field(ge=1)] = 1000


class Gates(PlanModel):
    """How gate criteria are judged under continuous looking (``schemas.confseq``).

    Every interval is a confidence sequence at level ``1 - alpha``: it covers the true
    value at every look at once, so a criterion shows a false "pass" at any look with
    probability at most ``alpha / 2``.
    """

    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.05


class Phase(PlanModel):
    """One step of the rollout: its candidate weight and the criteria to leave it.

    Gates are judged over the phase so far (or its last ``window_seconds``), each on at
    least ``min_samples`` candidate results (``min_feedback`` verdicts for feedback), and
    stay inconclusive until ``min_duration`` has passed since the phase started.
    """

    name: Annotated[str, Field(min_length=1, max_length=64)]
    weight: Annotated[int, Field(ge=0, le=100)]
    advance: list[Criterion] = []
    min_samples: Annotated[int, Field(ge=1)] = 1000
    min_feedback: Annotated[int, Field(ge=1)] = 50
    window_seconds: Annotated[int, Field(ge=1)] | None = None
    min_duration: Duration = 0
    fallback: bool = False
    announcement: Texts = {}


class Roles(PlanModel):
    baseline: Annotated[str, Field(min_length=1)] = "pipeline"
    candidate: Annotated[str, Field(min_length=1)] = "production"


class Plan(PlanModel):
    """A whole rollout plan (see the module docstring)."""

    name: Annotated[str, Field(min_length=1)] = "default"
    roles: Roles = Roles()
    auto_advance: bool = False
    phases: Annotated[list[Phase], Field(min_length=1)]
    rollback: list[Trigger] = []
    sequential: Sequential = Sequential()
    sample_ratio: SampleRatio = SampleRatio()
    gates: Gates = Gates()
    rollback_announcement: Texts = {}

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        weights = [p.weight for p in self.phases]
        if weights != sorted(weights) or weights[0] == 0:
            raise ValueError(f"phase weights must be above 0 and never decrease (got {weights})")
        names = [t.name for t in self.rollback]
        if len(set(names)) != len(names):
            raise ValueError("rollback trigger names must be unique")
        if self.roles.baseline == self.roles.candidate:
            raise ValueError("baseline and candidate must be different systems")
        return self

    def phase(self, number: int) -> Phase | None:
        """Phase ``number`` (1-based), None for 0 or past the end."""
        return self.phases[number - 1] if 1 <= number <= len(self.phases) else None

    @property
    def statistical_triggers(self) -> list[Trigger]:
        """The triggers judged by a CUSUM (the ``false_alarm`` budget is shared by them)."""
        return [t for t in self.rollback if metric(t.metric).unit != "count"]

    @property
    def guardrails(self) -> list[Trigger]:
        return [t for t in self.rollback if t.guardrail]


class PlanError(ValueError):
    """A plan file that cannot be used; the message names the file and the fields."""


def parse_plan(text: str, suffix: str = ".toml", source: str = "plan") -> Plan:
    """Validate plan ``text`` in the format of ``suffix`` (.toml, .yaml/.yml, .json)."""
    try:
        data: Any
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise PlanError(f"{source}: unknown plan format {suffix!r} (.toml, .yaml or .json)")
    except PlanError:
        raise
    except Exception as exc:  # the parsers' own errors carry the line
        raise PlanError(f"{source}: not valid {suffix[1:].upper()}: {exc}") from None
    try:
        return Plan.model_validate(data if data is not None else {})
    except ValidationError as exc:
        from schemas.codec import describe

        raise PlanError(f"{source}: {describe(exc)}") from None


def load_plan(path: Path | str | None = None) -> Plan:
    """The plan in ``path``; the packaged default plan when ``path`` is None."""
    if path is None:
        text = (resources.files("schemas") / "plans" / DEFAULT_PLAN).read_text("utf-8")
        return parse_plan(text, ".toml", f"default plan ({DEFAULT_PLAN})")
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read plan file {path}: {exc.strerror}") from None
    return parse_plan(text, path.suffix.lower(), str(path))
