"""Malformed and hostile messages for the results topic, each with what must become of it.

Every message says, per component, whether it must reach the DLQ (and a word its reason
must contain) or be used: stored by the sink, counted by the worker. Valid-but-odd events
(an unknown system, an old timestamp, a duplicate id) are data, not garbage: the contract
lets a rollout name any system, and history keeps what happened; only what cannot be
read or stored goes to the DLQ.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas.codec import encode
from schemas.events import Result

HUGE = 200_000  # characters: far above any field's limit, well below a Kafka request


@dataclass(frozen=True)
class Bad:
    """One injected message and its fate.

    ``sink``/``streams``: a word the component's DLQ reason must contain, or None when
    the component uses the message. ``stored``: the event the sink must store (once);
    ``counted``: the worker counts it in its window (False: late or ignored).
    """

    kind: str
    key: bytes | None
    value: bytes | None
    sink: str | None
    streams: str | None
    stored: Result | None = None
    counted: bool = False


def _result(rollout: str, **changes: object) -> dict:
    base = Result(
        rollout=rollout,
        system="pipeline",
        query_id=f"hostile-{uuid.uuid4().hex[:8]}",
        unit_id=f"hostile-{uuid.uuid4().hex[:6]}",
        success=True,
        confidence=0.9,
        latency_ms=100.0,
    )
    data = json.loads(encode(base))
    data.update(changes)
    return data


def _without(data: dict, *names: str) -> dict:
    return {k: v for k, v in data.items() if k not in names}


def _json(data: object) -> bytes:
    return json.dumps(data).encode()


def _valid(kind: str, rollout: str, sink: str | None, streams: str | None, counted: bool, **kw):
    event = Result.model_validate(_result(rollout, **kw))
    stored = event if sink is None else None
    return Bad(kind, event.unit_id.encode(), encode(event), sink, streams, stored, counted)


Maker = Callable[[str, random.Random, list[Result]], Bad]


def _invalid(kind: str, value: Callable[[str, random.Random], bytes | None], word: str) -> Maker:
    return lambda rollout, rng, _recent: Bad(
        kind, b"hostile", value(rollout, rng), sink=word, streams=word
    )


def _duplicate(rollout: str, rng: random.Random, recent: list[Result]) -> Bad:
    """A copy of an event already sent (what a retrying producer leaves): used once."""
    event = rng.choice(recent)
    return Bad("duplicate event_id", event.unit_id.encode(), encode(event), None, None)


def _far_future(rollout: str, rng: random.Random, _recent: list[Result]) -> Bad:
    ts = datetime(9999, 12, 31, tzinfo=UTC) if rng.random() < 0.5 else None
    ts = ts or datetime.now(UTC) + timedelta(days=rng.randint(1, 36_500))
    return _valid("ts far in the future", rollout, "future", "future", False, ts=ts.isoformat())


def _ancient(rollout: str, rng: random.Random, _recent: list[Result]) -> Bad:
    ts = datetime(rng.randint(1, 1969), 1, 1, tzinfo=UTC)
    return _valid("ts before 1970", rollout, "1970", "1970", False, ts=ts.isoformat())


def _old(rollout: str, rng: random.Random, _recent: list[Result]) -> Bad:
    ts = datetime(1971, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 18_000))
    return _valid("ts years ago", rollout, None, None, False, ts=ts.isoformat())


def _unknown_system(rollout: str, rng: random.Random, _recent: list[Result]) -> Bad:
    system = rng.choice(["shadow", "legacy-v0", "canary-eu"])
    return _valid("unknown system", rollout, None, None, True, system=system)


MAKERS: list[Maker] = [
    _invalid("invalid JSON", lambda r, g: b'{"schema": "phasegate.result/1", "event_id": ', "json"),
    _invalid("not UTF-8", lambda r, g: b"\xff\xfe\x00garbage", "json"),
    _invalid("not an object", lambda r, g: g.choice([b"[1, 2, 3]", b"42", b"null", b'"x"']), ""),
    _invalid("empty value", lambda r, g: None, "empty"),
    _invalid(
        "wrong types",
        lambda r, g: _json(_result(r, success="yes", latency_ms="12", weight=1.5)),
        "success",
    ),
    _invalid(
        "missing fields",
        lambda r, g: _json(_without(_result(r), "event_id", "success")),
        "required",
    ),
    _invalid("huge string", lambda r, g: _json(_result(r, system="x" * HUGE)), "at most 256"),
    _invalid(
        "NaN latency",
        lambda r, g: _json(_result(r)).replace(b'"latency_ms": 100.0', b'"latency_ms": NaN'),
        "latency_ms",
    ),
    _invalid("negative latency", lambda r, g: _json(_result(r, latency_ms=-5.0)), "latency_ms"),
    _invalid(
        "wrong schema", lambda r, g: _json(_result(r, schema="phasegate.feedback/1")), "schema"
    ),
    _unknown_system,
    _far_future,
    _ancient,
    _old,
    _duplicate,
]


def hostile(count: int, rollout: str, recent: list[Result], seed: int = 0) -> Iterator[Bad]:
    """``count`` bad messages, every kind in turn; duplicates copy events from ``recent``."""
    rng = random.Random(seed)
    for i in range(count):
        maker = MAKERS[i % len(MAKERS)]
        if maker is _duplicate and not recent:
            maker = _unknown_system
        yield maker(rollout, rng, recent)
