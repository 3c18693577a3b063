"""The live benchmark's arithmetic (bench/lag.py): which poll first saw a stored
event, percentiles and the lag's slope, on values worked out by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Appended, not prepended: the benchmarks' folder is no package and shadows nothing.
sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))

from lag import (
    Sightings,
    StoredBatch,
    by_window,
    emails_so_far,
    percentile,
    seen,
    slope,
)


def test_percentile_is_the_nearest_rank() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 9.0, 8.0, 7.0, 6.0]
    assert percentile(values, 50) == 5.0  # rank ceil(0.5 * 10) = 5
    assert percentile(values, 99) == 10.0  # rank ceil(9.9) = 10
    assert percentile(values, 10) == 1.0
    assert percentile(values, 0) == 1.0
    assert percentile([0.25], 99) == 0.25


def test_percentile_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_a_flat_lag_has_no_slope_and_a_growing_one_its_rate() -> None:
    assert slope([(0.0, 0.3), (10.0, 0.3), (20.0, 0.3)]) == 0.0
    # y = 0.5 x + 1: half a second of lag gained per second of run.
    assert slope([(0.0, 1.0), (2.0, 2.0), (4.0, 3.0), (6.0, 4.0)]) == 0.5
    # Least squares through (0, 0), (1, 2), (2, 1): means 1 and 1;
    # sum((x - 1)(y - 1)) = (-1)(-1) + 0 * 1 + 1 * 0 = 1 over sum((x - 1)^2) = 2.
    assert slope([(0.0, 0.0), (1.0, 2.0), (2.0, 1.0)]) == 0.5


def test_a_slope_needs_two_distinct_times() -> None:
    with pytest.raises(ValueError, match="two points"):
        slope([(1.0, 1.0)])
    with pytest.raises(ValueError, match="distinct"):
        slope([(1.0, 1.0), (1.0, 2.0)])


def test_a_row_is_seen_at_a_value_from_the_first_poll_showing_it_or_beyond() -> None:
    row = Sightings()
    row.saw(3, 100.0)
    row.saw(3, 100.05)  # unchanged: the first sighting stands
    row.saw(7, 100.10)  # versions 4-6 went by between two polls
    assert row.values == [3, 7]
    assert row.first_reaching(3) == 100.0
    assert row.first_reaching(5) == 100.10
    assert row.first_reaching(7) == 100.10
    assert row.first_reaching(8) is None


def test_running_email_counts_follow_each_accounts_versions() -> None:
    counts = {("b", 4): 2, ("a", 5): 3, ("a", 3): 10, ("b", 2): 1}
    assert emails_so_far(counts) == {("a", 3): 10, ("a", 5): 13, ("b", 2): 1, ("b", 4): 3}


def test_a_stored_event_is_seen_when_both_its_rows_have_been() -> None:
    balances, usage = {"a": Sightings()}, {"a": Sightings()}
    balances["a"].saw(5, 10.2)
    usage["a"].saw(13, 10.4)
    batch = StoredBatch("a", version=5, recorded_at=10.0, newest_email_at=9.9, emails_so_far=13)
    assert seen(batch, balances, usage) == (10.2, 10.4)
    assert seen(StoredBatch("a", 6, 10.0, 9.9, 13), balances, usage) is None
    assert seen(StoredBatch("z", 1, 10.0, 9.9, 1), balances, usage) is None


def test_lags_group_by_window_of_run_time() -> None:
    points = [(0.5, 1.0), (9.9, 2.0), (25.0, 3.0), (10.0, 4.0)]
    assert by_window(points, 10) == [[1.0, 2.0], [4.0], [3.0]]
    assert by_window([], 10) == []
