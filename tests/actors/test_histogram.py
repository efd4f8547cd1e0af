"""Fixed-bucket histograms: bucket edges, cumulative counts, merging, bad values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.histogram import ACCEPT_BOUNDS, Histogram, HistogramSnapshot


def test_values_fall_in_the_first_bucket_whose_bound_holds_them() -> None:
    h = Histogram((1.0, 5.0))
    for value in (0.0, 1.0, 1.5, 5.0, 7.0, -2.0, math.nan):
        h.observe(value)
    snap = h.snapshot()
    assert snap.counts == (3, 2, 1)  # 0, 1, -2 (as 0) | 1.5, 5 | 7; NaN ignored
    assert snap.count == 6 and snap.sum == 14.5
    assert snap.cumulative() == [(1.0, 3), (5.0, 5), (math.inf, 6)]


def test_snapshots_merge_only_with_the_same_buckets() -> None:
    a, b = Histogram(ACCEPT_BOUNDS), Histogram(ACCEPT_BOUNDS)
    a.observe(3)
    b.observe(50)
    merged = a.snapshot().merged(b.snapshot())
    assert merged.count == 2 and merged.sum == 53
    assert merged.merged(HistogramSnapshot.empty(ACCEPT_BOUNDS)) == merged
    with pytest.raises(ValueError):
        merged.merged(HistogramSnapshot.empty((1.0,)))


@pytest.mark.parametrize("bounds", [(), (2.0, 1.0), (1.0, 1.0), (-1.0, 1.0)])
def test_bounds_must_be_ascending_distinct_and_not_negative(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        Histogram(bounds)


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=50))
def test_cumulative_counts_never_decrease_and_end_at_the_count(values: list[float]) -> None:
    h = Histogram(ACCEPT_BOUNDS)
    for value in values:
        h.observe(value)
    cumulative = [n for _, n in h.snapshot().cumulative()]
    assert cumulative == sorted(cumulative)
    assert cumulative[-1] == sum(1 for v in values if v == v)
