"""Tests of the rollout package; ``TEN_TO_HUNDRED`` is a plan with phases at 10/25/50/100%."""

from pathlib import Path

TEN_TO_HUNDRED = Path(__file__).with_name("ten_to_hundred.toml")
