"""label: late means 15 minutes or more; split: train on January to June, judge on July and August."""

from __future__ import annotations

import pandas as pd
from conftest import flight, frame
from flightdelay.steps import LATE_MINUTES, label, split


def test_late_means_fifteen_minutes_or_more() -> None:
    delays = [-20.0, 0.0, 14.0, 15.0, 16.0, 180.0]
    late = label(frame(*[flight(arr_delay=d) for d in delays], index=[5, 4, 3, 2, 1, 0]))
    assert LATE_MINUTES == 15
    assert late.tolist() == [False, False, False, True, True, True]
    assert list(late.index) == [5, 4, 3, 2, 1, 0]


def test_split_by_month() -> None:
    flights = frame(*[flight(month=m, day=m) for m in [8, 1, 7, 2, 3, 4, 5, 6, 7]])
    train, validation = split(flights)
    assert sorted(train["month"]) == [1, 2, 3, 4, 5, 6]
    assert sorted(validation["month"]) == [7, 7, 8]
    assert set(train.index).isdisjoint(validation.index)
    assert len(train) + len(validation) == len(flights)
    pd.testing.assert_frame_equal(train, flights.loc[train.index])  # rows as they were
