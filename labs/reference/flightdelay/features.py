"""The model's input, shared by training, batch and live prediction.

1. :func:`model_input` turns flight rows into the model's *input*: the flight fields
   (``FLIGHT_FIELDS``, as whole numbers and text) plus the weather at departure
   (``WEATHER_FIELDS``). The weather comes either from a weather table (the pipeline's
   :func:`flightdelay.steps.join_weather`) or from the rows themselves (a live request carries
   it). Missing weather stays NaN: the model handles it.
2. :func:`make_features` (the first step of the model's Pipeline) derives the features from
   that input with the pipeline's :func:`flightdelay.steps.build_features`: scheduled
   departure hour, minute of day and weekday in New York local time, plus the categorical and
   numeric fields as they are.

The feature logic itself lives in ``flightdelay/steps.py``; this module only adapts it to
rows that come from a CSV file or a request, and keeps the names the service imports.
"""

from __future__ import annotations

import pandas as pd

from flightdelay.steps import (
    CATEGORICAL_FEATURES,
    FEATURES,
    NUMERIC_FEATURES,
    WEATHER_FIELDS,
    WEATHER_KEY,
    build_features,
    join_weather,
    scheduled_departure,
)

__all__ = [
    "CATEGORICAL_FEATURES", "FEATURES", "FLIGHT_FIELDS", "INPUT_FIELDS", "NUMERIC_FEATURES",
    "WEATHER_FIELDS", "WEATHER_KEY", "join_weather", "make_features", "model_input",
    "scheduled_departure",
]

FLIGHT_FIELDS: tuple[str, ...] = (
    "year", "month", "day", "sched_dep_time", "carrier", "origin", "dest", "distance",
)
"""What a scheduled flight must say about itself; times are New York local, HHMM."""

INPUT_FIELDS: tuple[str, ...] = FLIGHT_FIELDS + WEATHER_FIELDS
"""The model's input: the flight fields and the weather at the origin in the departure hour."""

_TEXT_FIELDS = ("carrier", "origin", "dest")


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
    scheduled_departure(out)  # fail early on an impossible time or date
    if weather is not None:
        return join_weather(out, weather)
    for name in WEATHER_FIELDS:
        out[name] = pd.to_numeric(rows[name], errors="coerce").astype("float64")
    return out


def make_features(inputs: pd.DataFrame) -> pd.DataFrame:
    """The model's features (``FEATURES``) from its input; the Pipeline's first step.

    The same function as training's :func:`flightdelay.steps.build_features`: one definition,
    so batch prediction, the service's skew reference and training cannot drift apart.
    """
    return build_features(inputs)
