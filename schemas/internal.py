"""Messages phasegate sends to itself: window partials (stage 1 to 2) and dead letters."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from schemas.base import ContractModel, Name, UtcDatetime, now

Count = Annotated[int, Field(ge=0)]


class SketchState(ContractModel):
    """A DDSketch's bins, portable: ``key -> count`` of the log-spaced buckets."""

    relative_accuracy: Annotated[float, Field(gt=0.0, lt=1.0)]
    zero_count: Annotated[float, Field(ge=0.0)] = 0.0
    bins: dict[int, Annotated[float, Field(ge=0.0)]] = {}


Bins = dict[int, Count]
"""Events by coarse latency bin (``streams.slow``)."""
Verdicts = dict[str, Count]
"""Feedback verdicts by verdict."""


class RuleState(ContractModel):
    """A rule's uses, successes, confidence sum and latency bins; the feedback verdicts on
    answers that name it."""

    uses: Count = 0
    successes: Count = 0
    confidence: Annotated[float, Field(ge=0.0)] = 0.0  # the sum over its uses
    latency: Bins = {}
    feedback: Verdicts = {}


class SegmentState(ContractModel):
    """A segment's events, the bad (unsuccessful) ones among them, their confidence sum and
    latency bins; the feedback verdicts on answers in it."""

    events: Count = 0
    bad: Count = 0
    confidence: Annotated[float, Field(ge=0.0)] = 0.0
    latency: Bins = {}
    feedback: Verdicts = {}


class UnitSampleState(ContractModel):
    """``streams.units.UnitSample``: the distinct unit hashes below ``2 ** (32 - level)``."""

    level: Annotated[int, Field(ge=0, le=32)] = 0
    hashes: list[Annotated[int, Field(ge=0, lt=2**32)]] = []


class WindowStatsState(ContractModel):
    """The wire form of ``streams.aggregate.WindowStats``: sums and counts that add up."""

    count: Count = 0
    successes: Count = 0
    confidence_sum: float = 0.0
    confidence_sq_sum: float = 0.0
    latency_sum: float = 0.0
    latency_sq_sum: float = 0.0
    latency: SketchState | None = None
    errors: dict[str, Count] = {}
    error_latency: dict[str, Bins] = {}  # each error type's latency bins
    critical: Count = 0
    fallbacks: Count = 0
    feedback: dict[str, Count] = {}
    rules: dict[str, RuleState] = {}
    late: Count = 0
    weights: dict[int, Count] = {}  # events by the weight they were routed with
    segments: dict[str, SegmentState] = {}  # by the results' segment label (optional)
    # a sample of the distinct units by routed weight, fallback copies left out
    unit_sample: dict[int, UnitSampleState] = {}


class Partial(ContractModel):
    """The aggregate of one (rollout, system, window) from one source partition.

    Stage 1 sends the events it read since its last flush; stage 2 adds partials up.
    ``first_offset``..``last_offset`` of ``source_topic``/``partition`` are the events
    it covers: stage 2 uses them to replace a replayed run instead of adding it twice.
    Below ``committed_offset`` the source is committed: no replay starts before it.
    ``read_at`` is when stage 1 read the run's newest event (its clock): the rollback
    triggers take a run as evidence only if it was read after the last change a person
    made to the rollout (None, from an older worker: always evidence). ``newest_ts`` is
    the newest event time among the run's events in this window: a run whose events all
    precede a person's change is not evidence either (a worker behind its topic reads the
    old phase's events after the change; None, from an older worker: evidence).
    """

    schema_: Literal["phasegate.partial/1"] = Field("phasegate.partial/1", alias="schema")
    rollout: Name
    system: Name
    window_start: UtcDatetime
    window_seconds: Annotated[int, Field(gt=0)]
    source_topic: Name
    partition: Count
    first_offset: Count
    last_offset: Count
    committed_offset: Count = 0
    read_at: UtcDatetime | None = None
    newest_ts: UtcDatetime | None = None
    stats: WindowStatsState


class DeadLetter(ContractModel):
    """A message no component could use, kept with its reason and its original bytes.

    ``key`` and ``original`` are base64 on the wire.
    """

    model_config = ConfigDict(
        **ContractModel.model_config, ser_json_bytes="base64", val_json_bytes="base64"
    )

    schema_: Literal["phasegate.dlq/1"] = Field("phasegate.dlq/1", alias="schema")
    ts: UtcDatetime = Field(default_factory=now)
    component: Name
    source_topic: Name
    partition: int = -1
    offset: int = -1
    key: bytes | None = None
    reason: Annotated[str, Field(max_length=4096)]
    original: bytes
