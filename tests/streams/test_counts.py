from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from streams import counts

keys = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=40)


@given(keys, keys, st.integers(0, 6))
def test_plain_dicts_count_as_a_counter_does(first, second, n):
    mine, other = {}, {}
    counts.count(mine, first)
    counts.count(other, second)
    counts.add(mine, other)
    reference = Counter(first)
    reference.update(Counter(second))
    assert mine == reference and type(mine) is dict
    assert counts.most_common(mine, n) == reference.most_common(n)  # ties: first seen first
