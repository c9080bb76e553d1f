"""The rollout plan: the default is the seed's rules; bad files name the field."""

from __future__ import annotations

import pytest

from schemas.plan import Plan, PlanError, load_plan, parse_plan

MINIMAL = """
[[phases]]
name = "canary"
weight = 10
advance = [{ metric = "success_rate", min = 0.99 }]

[[phases]]
name = "all"
weight = 100
"""


def test_default_plan_is_the_seeds_table_and_rollback_rules():
    plan = load_plan()
    assert [p.weight for p in plan.phases] == [50, 75, 100, 100]
    assert (plan.roles.baseline, plan.roles.candidate) == ("pipeline", "production")
    assert not plan.auto_advance
    bounds = [
        {(c.metric, c.min, c.max) for c in p.advance if c.compare is None} for p in plan.phases
    ]
    assert ("success_rate", 0.95, None) in bounds[0] and ("critical_errors", None, 0) in bounds[0]
    assert {("success_rate", 0.96, None), ("mean_latency_ms", None, 200)} <= bounds[1]
    assert ("complaint_rate", None, 0.05) in bounds[1]
    assert {("success_rate", 0.97, None), ("critical_errors", None, 0)} <= bounds[2]
    assert {
        ("success_rate", 0.98, None),
        ("mean_confidence", 0.85, None),
        ("mean_latency_ms", None, 200),
        ("feedback_positive_rate", 0.8, None),
    } <= bounds[3]
    compares = [(c.metric, c.compare) for c in plan.phases[0].advance + plan.phases[1].advance]
    assert ("success_rate", "baseline") in compares
    assert ("success_rate", "previous_phase") in compares
    triggers = {t.name: t for t in plan.rollback}
    assert triggers["success-emergency"].below == 0.90
    assert triggers["success-emergency"].action == "emergency"
    assert triggers["critical-error"].metric == "critical_errors"
    assert triggers["latency-partial"].action == "partial"
    assert "50%" in plan.phases[0].announcement["de"]
    assert "Fallback" in plan.phases[2].announcement["de"]
    assert plan.rollback_announcement["en"]


def test_yaml_and_toml_give_the_same_plan(tmp_path):
    yaml_text = """
phases:
  - name: canary
    weight: 10
    advance: [{metric: success_rate, min: 0.99}]
  - {name: all, weight: 100}
"""
    (tmp_path / "p.yaml").write_text(yaml_text)
    (tmp_path / "p.toml").write_text(MINIMAL)
    assert load_plan(tmp_path / "p.yaml") == load_plan(tmp_path / "p.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[phases]]\nname = "a"\nweight = 150', "phases.0.weight: Input should be less"),
        ("[[phases]]\nweight = 50", "phases.0.name: Field required"),
        ("phases = []", "phases: List should have at least 1 item"),
        (
            '[[phases]]\nname="a"\nweight=50\nadvance=[{metric="success_rate"}]',
            "phases.0.advance.0: Value error, give exactly one of min, max, compare",
        ),
        (
            '[[phases]]\nname="a"\nweight=50\nadvance=[{metric="speed", min=1}]',
            "phases.0.advance.0.metric: Input should be",
        ),
        (
            '[[phases]]\nname="a"\nweight=50\nadvance=[{metric="critical_errors", min=1}]',
            "phases.0.advance.0: Value error, critical_errors is a count not to exceed",
        ),
        (
            '[[phases]]\nname="a"\nweight=50\nadvance=[{metric="p90_latency_ms", '
            'compare="baseline"}]',
            "phases.0.advance.0: Value error, compare works on rates and means",
        ),
        (
            '[[phases]]\nname="a"\nweight=75\n[[phases]]\nname="b"\nweight=50',
            "never decrease",
        ),
        (
            '[[phases]]\nname="a"\nweight=50\n[[rollback]]\nname="x"\naction="emergency"\n'
            'metric="success_rate"\nabove=3',
            "rollback.0: Value error, success_rate triggers take `below`",
        ),
        ('[[phases]]\nname="a"\nweight=50\ncolour="red"', "phases.0.colour: Extra inputs"),
        ("[[phases]\n", "not valid TOML"),
    ],
)
def test_validation_errors_name_the_field(text, message):
    with pytest.raises(PlanError) as err:
        parse_plan(text, ".toml", "my-plan.toml")
    assert message in str(err.value)
    assert str(err.value).startswith("my-plan.toml")


def test_missing_file_and_unknown_format_are_one_clear_message(tmp_path):
    with pytest.raises(PlanError, match="cannot read plan file"):
        load_plan(tmp_path / "nope.toml")
    (tmp_path / "p.ini").write_text("x")
    with pytest.raises(PlanError, match="unknown plan format"):
        load_plan(tmp_path / "p.ini")


def test_threshold_grows_with_horizon_and_trigger_count():
    plan = Plan.model_validate({"phases": [{"name": "a", "weight": 50}]})
    one, two = plan.sequential.threshold(1), plan.sequential.threshold(2)
    assert one == pytest.approx(18.42, abs=0.01)  # ln(1e6 / 0.01)
    assert two > one
