"""Presentation helpers of the reports."""

from __future__ import annotations

from sinks.render import shown


def test_a_difference_that_rounds_to_zero_is_shown_without_a_sign() -> None:
    # Two equal means summed in different orders differ by about 1e-17 either way.
    assert f"{-1e-17:.3f}" == "-0.000"  # what the reports printed before
    assert f"{shown(-1e-17, 3):.3f}" == f"{shown(1e-17, 3):.3f}" == "0.000"
    assert f"{shown(-1e-17, 3):+.3f}" == "+0.000"
    assert f"{shown(-4e-5, 4):.2%}" == "0.00%"
    assert f"{shown(-0.0006, 3):.3f}" == "-0.001"  # a real change keeps its sign
    assert f"{shown(2.345, 1):.1f}" == f"{2.345:.1f}"  # rounds as the format does
