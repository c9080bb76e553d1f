"""Contract models -> columns."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas import Alert, AlertAction, AlertWindow, Feedback, RolloutEvent, encode
from schemas.events import Contributor, Result
from schemas.fastcodec import fast_decode_structs
from sinks import ddl, rows
from tests.sinks.conftest import make_result

T = datetime(2024, 1, 1, tzinfo=UTC)


def test_result_columns_flatten_the_error() -> None:
    ok, failed = make_result(1), make_result(21)
    cols = rows.result_columns([ok, failed])
    assert list(cols) == ddl.RESULTS.column_names
    assert cols["error_type"] == [None, "timeout"]
    assert cols["error_message"] == [None, "slow"]
    assert cols["error_critical"] == [None, True]
    assert cols["event_id"] == [ok.event_id, failed.event_id]
    assert cols["rules"] == [["r1"], []]


ALERT = Alert(
    rollout="r",
    system="production",
    severity="critical",
    kind="emergency_rollback",
    metric="success_rate",
    observed=0.8,
    threshold=0.9,
    window=AlertWindow(start=T, end=T),
    samples=120,
    action=AlertAction(weight_from=75, weight_to=0),
)


def test_alert_columns_flatten_window_and_action() -> None:
    no_action = ALERT.model_copy(update={"action": None})
    cols = rows.alert_columns([ALERT, no_action])
    assert list(cols) == ddl.ALERTS.column_names
    assert cols["window_start"] == [T, T]
    assert cols["action_weight_from"] == [75, None]
    assert cols["action_weight_to"] == [0, None]
    assert cols["contributors"] == ["[]", "[]"]


def _row(cols: rows.Columns) -> dict:
    return {name: values[0] for name, values in cols.items()}


def test_a_row_reads_back_as_its_model() -> None:
    why = Contributor(dimension="rule", value="r1", candidate=9, baseline=1, expected=0.5)
    explained = ALERT.model_copy(update={"contributors": [why]})
    for alert in (explained, explained.model_copy(update={"action": None})):
        assert rows.model_of(Alert, _row(rows.alert_columns([alert]))) == alert
    result = make_result(21).model_copy(update={"segment": "de"})
    assert rows.model_of(Result, _row(rows.result_columns([result]))) == result


def test_feedback_and_rollout_columns_match_their_tables() -> None:
    fb = Feedback(rollout="r", query_id="q", system="s", verdict="incorrect")
    ev = RolloutEvent(rollout="r", type="weight_set", weight=75, actor="ops")
    assert rows.feedback_columns([fb])["verdict"] == ["incorrect"]
    assert rows.feedback_columns([fb])["comment"] == [None]
    cols = rows.rollout_columns([ev])
    assert list(cols) == ddl.ROLLOUT_EVENTS.column_names
    assert (cols["type"], cols["weight"], cols["phase"]) == (["weight_set"], [75], [None])


def test_no_rows_gives_empty_columns() -> None:
    assert rows.result_columns([]) == {name: [] for name in ddl.RESULTS.column_names}


def test_structs_give_the_columns_their_models_give() -> None:
    """The sink's rows straight from the fast decoder's Structs (a fallback model among
    them), as from the models."""
    results = [make_result(i, segment="de" if i % 2 else None) for i in range(20, 24)]
    feedback = [
        Feedback(rollout="r", query_id=f"q{i}", system="s", verdict="correct", comment=c)
        for i, c in enumerate(["ok", None])
    ]
    for events, table in ((results, ddl.RESULTS), (feedback, ddl.FEEDBACK)):
        structs = fast_decode_structs([encode(e) for e in events], type(events[0]))
        assert not any(isinstance(s, type(events[0])) for s in structs)
        mixed = [*structs[:-1], events[-1]]
        assert rows.columns(structs, table) == rows.columns(events, table)
        assert rows.columns(mixed, table) == rows.columns(events, table)
