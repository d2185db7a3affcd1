"""The pipeline's steps, one function each (the lab README fixes their names and what they do).

This is the notebook's code, cut into the README's functions and nothing more: it runs, and it
makes every silent mistake of the lecture's catalogue. Each TODO says what the README asks for.
Keep this module to the standard library, numpy, pandas and pandera: the graders swap the whole
file for their own versions while your tests run.
"""

from __future__ import annotations

import pandas as pd

LATE_MINUTES = 15
WEATHER_FIELDS = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]
CATEGORICAL_FEATURES = ["carrier", "origin", "dest"]
NUMERIC_FEATURES = ["dep_hour", "dep_minute_of_day", "weekday", "distance", *WEATHER_FIELDS]
FEATURES = CATEGORICAL_FEATURES + NUMERIC_FEATURES


def validate(flights: pd.DataFrame, airports: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid rows, rejected rows)."""
    # TODO: the data contract, with pandera: raise an error naming the column when one is missing
    # or has the wrong type; reject (and give a reason to) each row that breaks a rule.
    return flights, flights.iloc[0:0]


def clean(flights: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """(labelled rows, removed counts by reason)."""
    # TODO: this drops every row with any missing value, whatever the reason, and counts nothing.
    return flights.dropna(), {}


def join_weather(flights: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
    """The weather at the origin in the scheduled departure's hour, joined to each flight."""
    hourly = weather[["origin", "year", "month", "day", "hour", *WEATHER_FIELDS]]
    with_hour = flights.drop(columns=[c for c in WEATHER_FIELDS if c in flights]).assign(hour=flights["sched_dep_time"] // 100)
    # TODO: which flights does this merge keep, and in which order?
    return with_hour.merge(hourly, on=["origin", "year", "month", "day", "hour"]).drop(columns="hour")


def build_features(rows: pd.DataFrame) -> pd.DataFrame:
    """The model's features (FEATURES)."""
    features = pd.DataFrame(index=rows.index)
    for name in CATEGORICAL_FEATURES:
        features[name] = rows[name].astype(str)
    features["dep_hour"] = rows["sched_dep_time"] // 100
    features["dep_minute_of_day"] = rows["sched_dep_time"] // 100 * 60 + rows["sched_dep_time"] % 100
    features["weekday"] = pd.to_datetime(rows[["year", "month", "day"]]).dt.day_of_week
    for name in ["distance", *WEATHER_FIELDS]:
        features[name] = rows[name]
    return features


def label(flights: pd.DataFrame) -> pd.Series:
    """Late: arrived LATE_MINUTES or more after the scheduled time."""
    return flights["arr_delay"] >= LATE_MINUTES


def split(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation)."""
    # TODO: the README's split is by month; a random 80/20 split lets the model see the future.
    validation = rows.sample(frac=0.2)
    return rows.drop(index=validation.index), validation
