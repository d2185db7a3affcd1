"""The pipeline's steps, one function each: validate, clean, join_weather, build_features,
label and split, with the data contract they share.

``flightdelay.train`` runs them in that order; ``flightdelay.features`` (batch and live
prediction) reuses join_weather and build_features, so that training and serving derive the
model's features in one place. The module imports only the standard library, numpy, pandas and
pandera: it is the lab's fixed interface, and a grader may swap the whole file for its own
version while the team's tests run.

The data contract is a pandera schema (:func:`flights_schema`). A problem with a whole column
(missing, or text where numbers belong) is a :class:`SchemaError`: nothing sensible can be
trained on such data, so the pipeline stops. A problem with a single row (a negative distance,
a scheduled time of 25:75, a flight that does not leave New York) only costs that row:
:func:`validate` rejects it with its reason, and training goes on with the rest. A code the
lookup tables do not list (a new carrier, a destination missing from airports.csv.gz) is not an
error: the flight is real, the model handles an unseen category, and ``train`` lists the codes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

LATE_MINUTES = 15
"""A flight is late when it arrives this many minutes or more after its scheduled time."""
TRAIN_MONTHS: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
VALIDATION_MONTHS: tuple[int, ...] = (7, 8)
ORIGINS: tuple[str, ...] = ("EWR", "JFK", "LGA")
"""The three New York airports every flight in the data leaves from."""

WEATHER_FIELDS: tuple[str, ...] = (
    "temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib",
)
"""Weather at the origin airport in the scheduled departure hour (any of them may be missing)."""
WEATHER_KEY: tuple[str, ...] = ("origin", "year", "month", "day", "hour")
"""How a weather row is found: origin airport, local date and local hour."""
CATEGORICAL_FEATURES: tuple[str, ...] = ("carrier", "origin", "dest")
NUMERIC_FEATURES: tuple[str, ...] = ("dep_hour", "dep_minute_of_day", "weekday", "distance",
                                     *WEATHER_FIELDS)
FEATURES: tuple[str, ...] = CATEGORICAL_FEATURES + NUMERIC_FEATURES
"""The model's features, in the order the model receives them: all known before departure."""

NUMBER_COLUMNS: tuple[str, ...] = ("year", "month", "day", "dep_time", "sched_dep_time",
                                   "arr_delay", "distance")
TEXT_COLUMNS: tuple[str, ...] = ("carrier", "origin", "dest")
"""The flights columns the pipeline needs (the file may have more; they are ignored)."""


class SchemaError(ValueError):
    """A table cannot be used at all: a required column is missing or has the wrong type.

    The message is one line that names the column and says how to fix it.
    """


def _hhmm_ok(values: pd.Series) -> pd.Series:
    """A local clock time written as HHMM: 0-2359, whole, minutes below 60."""
    return (values >= 0) & (values % 1 == 0) & (values // 100 <= 23) & (values % 100 <= 59)


def _real_date(frame: pd.DataFrame) -> pd.Series:
    """year/month/day name a day that exists (no 30 February)."""
    parts = frame[["year", "month", "day"]].apply(pd.to_numeric, errors="coerce")
    return pd.to_datetime(parts, errors="coerce").notna()


def flights_schema() -> pa.DataFrameSchema:
    """The flights table's data contract.

    A carrier is a two-character code and a destination a three-character one, listed in the
    lookup tables or not: airports.csv.gz lacks real destinations (San Juan, St. Thomas, ...),
    and a table's gap must not cost real flights. The origin must be one of ``ORIGINS``: the
    product covers flights out of New York only.

    Numbers are checked as float64 (:func:`validate` converts whole-number columns first), so
    that a column of integers and one with missing values both pass, and text does not.
    """
    def number(*checks: pa.Check, nullable: bool = False) -> pa.Column:
        return pa.Column("float64", checks=list(checks), nullable=nullable)

    return pa.DataFrameSchema(
        {
            "year": number(pa.Check.in_range(2000, 2100)),
            "month": number(pa.Check.isin(list(range(1, 13)))),
            "day": number(pa.Check.isin(list(range(1, 32)))),
            # dep_time may be missing (a cancelled flight); 2400 is a departure at midnight.
            "dep_time": number(pa.Check.in_range(0, 2400), nullable=True),
            "sched_dep_time": number(pa.Check(_hhmm_ok, name="local time HHMM (0000-2359)")),
            "arr_delay": number(nullable=True),  # missing: cancelled or diverted (see clean)
            "carrier": pa.Column(None, pa.Check.str_matches(r"^[A-Z0-9]{2}$")),
            "origin": pa.Column(None, pa.Check.isin(list(ORIGINS))),
            "dest": pa.Column(None, pa.Check.str_matches(r"^[A-Z0-9]{3}$")),
            "distance": number(pa.Check.gt(0)),
        },
        checks=[pa.Check(_real_date, name="real date")],
        strict=False,
        name="flights",
    )


WEATHER_SCHEMA = pa.DataFrameSchema(
    {"origin": pa.Column(None), **{name: pa.Column("float64") for name in WEATHER_KEY[1:]},
     **{name: pa.Column("float64", nullable=True) for name in WEATHER_FIELDS}},
    strict=False,
    name="weather",
)
"""The weather table's contract: only its columns and their types (rows are not judged)."""


def _as_float(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``frame`` with its numeric ``columns`` as float64, text left as it is for the schema."""
    out = frame.reset_index(drop=True)
    for name in columns:
        if name in out and pd.api.types.is_numeric_dtype(out[name]) \
                and not pd.api.types.is_bool_dtype(out[name]):
            out[name] = out[name].astype("float64")
    return out


def _failures(frame: pd.DataFrame, schema: pa.DataFrameSchema, table: str) -> pd.DataFrame:
    """Row failures of ``frame`` (columns ``column``, ``position``) under ``schema``.

    Raises SchemaError for the first problem with a whole column, in the schema's order.
    """
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as err:
        cases = err.failure_cases
    else:
        return pd.DataFrame({"column": pd.Series(dtype=object), "position": pd.Series(dtype="int64")})
    whole = cases["check"].astype(str).str.startswith(("column_in_dataframe", "dtype(")) \
        | cases["index"].isna()
    if whole.any():
        order = list(schema.columns)
        missing = cases["check"].astype(str) == "column_in_dataframe"
        bad = cases[whole].assign(name=cases["column"].where(~missing, cases["failure_case"]))
        bad = bad.assign(rank=bad["name"].map(lambda n: order.index(n) if n in order else len(order)))
        first = bad.sort_values("rank", kind="stable").iloc[0]
        name = str(first["name"])
        if str(first["check"]) == "column_in_dataframe":
            raise SchemaError(f"{table}: column '{name}' is missing (the pipeline needs "
                              f"{', '.join(order)}); restore or rename it in the file")
        example = cases.loc[whole & (cases["column"] == name), "failure_case"].head(1).tolist()
        raise SchemaError(f"{table}: column '{name}' has the wrong type: it should hold numbers "
                          f"but holds {example[0]!r} and more like it; fix the file's '{name}' "
                          "column (numbers only, empty where missing)" if example else
                          f"{table}: column '{name}' has the wrong type; fix it in the file")
    column = cases["column"].where(cases["check"] != "real date", "day")
    return pd.DataFrame({"column": column.to_numpy(), "position": cases["index"].astype("int64").to_numpy()})


def validate(flights: pd.DataFrame, airports: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid rows, rejected rows) of ``flights`` under the data contract.

    ``airports`` is the airports table; it must have its ``faa`` column, but a destination it
    does not list is valid (so is a carrier code never seen before): the flight is real and the
    model handles unknown categories; ``train`` lists such codes in the run log. Raises
    SchemaError naming the column when a required column is missing or has the wrong type. A
    rejected row keeps its columns and gets ``reason`` = ``"invalid:<column>"``, the first
    column it fails in the file's column order. Both frames keep the input's index.
    """
    if "faa" not in airports:
        raise SchemaError("airports: column 'faa' is missing; restore it in airports.csv.gz")
    failures = _failures(_as_float(flights, NUMBER_COLUMNS), flights_schema(), "flights")
    rank = {name: i for i, name in enumerate(flights.columns)}
    first = (failures.assign(rank=failures["column"].map(rank))
             .sort_values(["position", "rank"], kind="stable").drop_duplicates("position"))
    reason = pd.Series("", index=pd.RangeIndex(len(flights)), dtype=object)
    reason[first["position"].to_numpy()] = ("invalid:" + first["column"].astype(str)).to_numpy()
    bad = (reason != "").to_numpy()
    rejected = flights[bad].assign(reason=reason[bad].to_numpy())
    return flights[~bad], rejected


def validate_weather(weather: pd.DataFrame) -> pd.DataFrame:
    """``weather`` if it has every column the join needs, with numbers; else SchemaError."""
    _failures(_as_float(weather, (*WEATHER_KEY[1:], *WEATHER_FIELDS)), WEATHER_SCHEMA, "weather")
    return weather


def clean(flights: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """(labelled rows, removed counts): a flight without ``dep_time`` was cancelled, one with a
    ``dep_time`` but no ``arr_delay`` was diverted; neither has a label, so both are removed
    and counted (keys ``cancelled`` and ``diverted``, always present)."""
    cancelled = flights["dep_time"].isna()
    diverted = ~cancelled & flights["arr_delay"].isna()
    kept = flights[~(cancelled | diverted)]
    return kept, {"cancelled": int(cancelled.sum()), "diverted": int(diverted.sum())}


def join_weather(flights: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
    """``flights`` with ``WEATHER_FIELDS`` from ``weather``: a left join, row order and index kept.

    The key is the origin airport and the local date and hour of the *scheduled* departure
    (``sched_dep_time // 100``): the forecast a traveller could know. The repeated hour at the
    end of daylight saving time keeps its first reading. A flight with no weather row keeps
    NaN weather (the model handles it). Weather columns already in ``flights`` are replaced.
    """
    missing = [name for name in (*WEATHER_KEY, *WEATHER_FIELDS) if name not in weather]
    if missing:
        raise SchemaError(f"weather: column '{missing[0]}' is missing; restore it in weather.csv.gz")
    numbers = list(WEATHER_KEY[1:])
    table = weather[[*WEATHER_KEY, *WEATHER_FIELDS]].drop_duplicates(list(WEATHER_KEY), keep="first")
    table = table.astype({"origin": str, **dict.fromkeys(numbers, "float64")})
    keys = pd.DataFrame({
        "origin": flights["origin"].astype(str).to_numpy(),
        "year": pd.to_numeric(flights["year"]).to_numpy(dtype="float64"),
        "month": pd.to_numeric(flights["month"]).to_numpy(dtype="float64"),
        "day": pd.to_numeric(flights["day"]).to_numpy(dtype="float64"),
        "hour": (pd.to_numeric(flights["sched_dep_time"]) // 100).to_numpy(dtype="float64"),
    })
    joined = keys.merge(table, on=list(WEATHER_KEY), how="left", validate="many_to_one")
    out = flights.drop(columns=[name for name in WEATHER_FIELDS if name in flights])
    return out.assign(**{name: joined[name].to_numpy(dtype="float64") for name in WEATHER_FIELDS})


def scheduled_departure(rows: pd.DataFrame) -> pd.DataFrame:
    """Local scheduled departure: ``dep_hour`` (0-23), ``dep_minute_of_day``, ``weekday`` (Mon=0).

    ``sched_dep_time`` is HHMM in New York local time (1530 is 15:30) on the local
    ``year``/``month``/``day``, exactly as the airline's timetable says. Raises ValueError for
    an impossible time or date, naming the value.
    """
    hhmm = pd.to_numeric(rows["sched_dep_time"], errors="coerce")
    bad = hhmm.isna() | ~_hhmm_ok(hhmm.fillna(0))
    if bad.any():
        value = rows["sched_dep_time"][bad].iloc[0]
        raise ValueError(f"sched_dep_time must be a local time as HHMM (0-2359), got {value!r}")
    date = pd.to_datetime(rows[["year", "month", "day"]].apply(pd.to_numeric, errors="coerce"),
                          errors="coerce")
    if date.isna().any():
        first = rows.loc[date.isna(), ["year", "month", "day"]].iloc[0].tolist()
        raise ValueError(f"year/month/day must be a real date, got {first}")
    hour, minute = hhmm // 100, hhmm % 100
    return pd.DataFrame({"dep_hour": hour.astype("int64"),
                         "dep_minute_of_day": (hour * 60 + minute).astype("int64"),
                         "weekday": date.dt.day_of_week.astype("int64")}, index=rows.index)


def build_features(rows: pd.DataFrame) -> pd.DataFrame:
    """The model's features (``FEATURES``, in order) of flight rows that carry their weather.

    Departure hour, minute of day and weekday come from the scheduled local time; carrier,
    origin and destination stay text; distance and weather are float64 (NaN where missing).
    Nothing known only after departure (dep_time, dep_delay, arr_delay, ...) is used.
    """
    when = scheduled_departure(rows)
    out = pd.DataFrame(index=rows.index)
    for name in CATEGORICAL_FEATURES:
        out[name] = rows[name].astype(object)
    for name in NUMERIC_FEATURES:
        source = when[name] if name in when else pd.to_numeric(rows[name], errors="coerce")
        out[name] = source.astype(np.float64)
    return out


def label(flights: pd.DataFrame) -> pd.Series:
    """True when the flight arrived ``LATE_MINUTES`` (15) or more minutes late (``arr_delay``)."""
    return (flights["arr_delay"] >= LATE_MINUTES).rename("late")


def split(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) by month: January to June, then July and August (rows of other months
    are in neither). Training never sees the months it is judged on."""
    month = pd.to_numeric(rows["month"])
    return rows[month.isin(TRAIN_MONTHS)], rows[month.isin(VALIDATION_MONTHS)]
