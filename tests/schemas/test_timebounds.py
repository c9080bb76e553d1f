"""The event-time rule the worker and the sink share."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from schemas.timebounds import ts_refusal

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2026, 6, 1, 0, 5)))
def test_from_1970_to_the_future_limit_is_accepted(ts):
    assert ts_refusal(ts.replace(tzinfo=UTC), NOW.timestamp(), 300) is None


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1969, 12, 31, 23, 59, 59)))
def test_before_1970_is_refused(ts):
    reason = ts_refusal(ts.replace(tzinfo=UTC), NOW.timestamp(), 300)
    assert reason is not None and "before 1970" in reason


def test_beyond_the_future_limit_is_refused_with_the_distance():
    reason = ts_refusal(NOW + timedelta(seconds=301), NOW.timestamp(), 300)
    assert reason is not None and "301 s in the future (limit 300 s)" in reason
    assert ts_refusal(datetime(9999, 12, 31, tzinfo=UTC), NOW.timestamp(), 300)
