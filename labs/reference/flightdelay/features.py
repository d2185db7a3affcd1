"""Feature engineering for the flight-delay model, shared by training, batch and live prediction.

Two steps, so that a live service and offline training build features the same way:

1. :func:`model_input` turns flight rows into the model's *input*: the flight fields
   (``FLIGHT_FIELDS``) plus the weather at departure (``WEATHER_FIELDS``). The weather comes
   either from a weather table (:func:`join_weather`, training and batch) or from the rows
   themselves (a live request carries it). Missing weather stays NaN: the model handles it.
2. :func:`make_features` (the first step of the model's Pipeline) derives the features from
   that input: scheduled departure hour, minute of day and weekday, all in New York local
   time, plus the categorical and numeric fields as they are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FLIGHT_FIELDS: tuple[str, ...] = (
    "year", "month", "day", "sched_dep_time", "carrier", "origin", "dest", "distance",
)
"""What a scheduled flight must say about itself; times are New York local, HHMM."""

WEATHER_FIELDS: tuple[str, ...] = (
    "temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib",
)
"""Weather at the origin airport in the scheduled departure hour (any of them may be missing)."""

INPUT_FIELDS: tuple[str, ...] = FLIGHT_FIELDS + WEATHER_FIELDS
WEATHER_KEY: tuple[str, ...] = ("origin", "year", "month", "day", "hour")
"""The weather join: origin airport and the local date and hour of the scheduled departure."""

CATEGORICAL_FEATURES: tuple[str, ...] = ("carrier", "origin", "dest")
NUMERIC_FEATURES: tuple[str, ...] = ("dep_hour", "dep_minute_of_day", "weekday", "distance",
                                     *WEATHER_FIELDS)
FEATURES: tuple[str, ...] = CATEGORICAL_FEATURES + NUMERIC_FEATURES
"""The model's features, in the order the Pipeline's ColumnTransformer receives them."""

_TEXT_FIELDS = ("carrier", "origin", "dest")


def scheduled_departure(rows: pd.DataFrame) -> pd.DataFrame:
    """Local scheduled departure: ``dep_hour`` (0-23), ``dep_minute_of_day``, ``weekday`` (Mon=0).

    ``sched_dep_time`` is an HHMM integer in New York local time (e.g. 1530 is 15:30); the
    date is the local ``year``/``month``/``day``. Raises ValueError for an impossible time
    or date, naming the first bad row.
    """
    hhmm = pd.to_numeric(rows["sched_dep_time"], errors="coerce")
    hour, minute = hhmm // 100, hhmm % 100
    bad = hhmm.isna() | (hhmm % 1 != 0) | (hour < 0) | (hour > 23) | (minute > 59)
    if bad.any():
        value = rows["sched_dep_time"][bad].iloc[0]
        raise ValueError(f"sched_dep_time must be a local time as HHMM (0-2359), got {value!r}")
    date = pd.to_datetime(
        pd.DataFrame({"year": rows["year"], "month": rows["month"], "day": rows["day"]}),
        errors="coerce",
    )
    if date.isna().any():
        first = rows.loc[date.isna(), ["year", "month", "day"]].iloc[0].tolist()
        raise ValueError(f"year/month/day must be a real date, got {first}")
    return pd.DataFrame(
        {
            "dep_hour": hour.astype("int64"),
            "dep_minute_of_day": (hour * 60 + minute).astype("int64"),
            "weekday": date.dt.day_of_week.astype("int64"),
        },
        index=rows.index,
    )


def join_weather(rows: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with ``WEATHER_FIELDS`` taken from ``weather`` (a left join; order kept).

    The key is the origin and the local date and hour of the scheduled departure. The
    repeated hour at the end of daylight saving time (1 am, 3 Nov 2013) keeps its first
    (EDT) reading. A flight with no weather row keeps NaN weather.
    """
    missing = [c for c in (*WEATHER_KEY, *WEATHER_FIELDS) if c not in weather.columns]
    if missing:
        raise ValueError(f"weather table lacks columns {missing}")
    key = [*WEATHER_KEY[:-1], "_dep_hour"]
    table = weather[list(WEATHER_KEY) + list(WEATHER_FIELDS)].rename(columns={"hour": "_dep_hour"})
    table = table.drop_duplicates(key, keep="first")
    left = rows.drop(columns=[c for c in WEATHER_FIELDS if c in rows.columns])
    left = left.assign(_dep_hour=scheduled_departure(rows)["dep_hour"].to_numpy())
    joined = left.reset_index(drop=True).merge(table, on=key, how="left", validate="many_to_one")
    joined.index = rows.index
    return joined.drop(columns="_dep_hour")


def model_input(rows: pd.DataFrame, weather: pd.DataFrame | None = None) -> pd.DataFrame:
    """The model's input frame (``INPUT_FIELDS``, in order) from flight rows.

    With ``weather``, the weather is joined from that table. Without it, the rows must carry
    the weather columns themselves (each value may be missing). Raises ValueError when a
    required column is absent: missing inputs are never filled in silently.
    """
    absent = [c for c in FLIGHT_FIELDS if c not in rows.columns]
    if weather is None:
        absent += [c for c in WEATHER_FIELDS if c not in rows.columns]
    if absent:
        raise ValueError(f"rows lack required columns {absent}"
                         + ("" if weather is not None else " (or pass a weather table)"))
    if weather is not None:
        rows = join_weather(rows, weather)
    out = pd.DataFrame(index=rows.index)
    for name in FLIGHT_FIELDS:
        if name in _TEXT_FIELDS:
            out[name] = rows[name].astype(str)
        else:
            number = pd.to_numeric(rows[name], errors="coerce")
            if number.isna().any() or (number % 1 != 0).any():
                value = rows[name][number.isna() | (number % 1 != 0)].iloc[0]
                raise ValueError(f"{name} must be a whole number, got {value!r}")
            out[name] = number.astype("int64")
    for name in WEATHER_FIELDS:
        out[name] = pd.to_numeric(rows[name], errors="coerce").astype("float64")
    scheduled_departure(out)  # fail early on an impossible time or date
    return out


def make_features(inputs: pd.DataFrame) -> pd.DataFrame:
    """The model's features (``FEATURES``) from its input; the Pipeline's first step."""
    when = scheduled_departure(inputs)
    out = pd.DataFrame(index=inputs.index)
    for name in CATEGORICAL_FEATURES:
        out[name] = inputs[name].astype(object)
    for name in NUMERIC_FEATURES:
        source = when[name] if name in when else inputs[name]
        out[name] = source.astype(np.float64)
    return out
