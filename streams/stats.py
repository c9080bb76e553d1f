"""Moved to ``schemas.stats`` (shared with sinks); kept so streams' imports keep working."""

from schemas.stats import Estimate, mean_interval, wilson

__all__ = ["Estimate", "mean_interval", "wilson"]
