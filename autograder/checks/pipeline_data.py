"""The pipeline lab's data, built by the harness: subsamples of the public months written in the
export layout, altered on purpose (corrupt rows, schema changes, a new carrier, shuffled labels),
and the counts a team's run log must report for them, computed here from the spec's rules.

Everything is read as text (``dtype=str``, empty fields kept as ""), as
:func:`autograder.data.write_public` reads it, so that an unaltered value is written back byte
for byte and an alteration is exactly the one the check made. The source is trusted (the kit's
own data); only the folders written here go to a team.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from autograder.data import EXPORT_MARKER, LATE_MINUTES, PERIODS

NYC = ("EWR", "JFK", "LGA")
"""The only valid origins: the product covers flights out of New York."""
DEST_CODE = r"[A-Z0-9]{3}"
"""A valid destination: any three-character code; one airports.csv.gz lacks is kept (the table
misses real destinations such as SJU and STT) and listed in the run log's unseen_values."""
OUTCOMES = ("dep_time", "dep_delay", "arr_time", "arr_delay", "air_time")
"""Columns known only after departure: never in the rows ``predict`` gets."""
COPIED = ("airlines", "airports", "planes")
WEATHER_KEY = ("origin", "year", "month", "day", "hour")
PUBLIC_MONTHS = PERIODS["train"] + PERIODS["validation"]
HELDOUT_MONTHS = PERIODS["heldout"]


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@dataclass(frozen=True)
class Source:
    """One data folder read as text: flights and weather of the months asked for, and the lookups."""

    folder: Path
    flights: pd.DataFrame
    weather: pd.DataFrame
    airports: frozenset[str]
    carriers: frozenset[str]


@functools.lru_cache(maxsize=4)
def _source(folder: str, months: tuple[int, ...]) -> Source:
    root = Path(folder)
    flights, weather = _read(root / "flights.csv.gz"), _read(root / "weather.csv.gz")
    flights = flights[flights["month"].astype(int).isin(months)].reset_index(drop=True)
    weather = weather[weather["month"].astype(int).isin(months)].reset_index(drop=True)
    airports = frozenset(_read(root / "airports.csv.gz")["faa"])
    carriers = frozenset(_read(root / "airlines.csv.gz")["carrier"])
    return Source(root, flights, weather, airports, carriers)


def source(folder: Path, months: tuple[int, ...] = PUBLIC_MONTHS) -> Source:
    """The data of ``months`` in ``folder`` (cached: callers copy before they alter)."""
    return _source(str(Path(folder).resolve()), tuple(months))


def subsample(src: Source, share: float, seed: int) -> pd.DataFrame:
    """A seeded ``share`` of the flights, in the file's order (a copy, safe to alter)."""
    rng = np.random.default_rng(seed)
    keep = rng.random(len(src.flights)) < share
    return src.flights[keep].reset_index(drop=True).copy()


def _write_gzip_csv(frame: pd.DataFrame, path: Path) -> None:
    text = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz:
        gz.write(text)


def write_folder(dest: Path, src: Source, flights: pd.DataFrame, weather: pd.DataFrame | None = None) -> Path:
    """A data folder in the public export's layout: these flights, the weather (the source's by
    default) and the lookup tables copied, with an EXPORT.json of a fresh id."""
    dest.mkdir(parents=True, exist_ok=True)
    _write_gzip_csv(flights, dest / "flights.csv.gz")
    _write_gzip_csv(src.weather if weather is None else weather, dest / "weather.csv.gz")
    for table in COPIED:
        shutil.copyfile(src.folder / f"{table}.csv.gz", dest / f"{table}.csv.gz")
    months = sorted({int(m) for m in flights["month"]}) if "month" in flights else []
    marker = {"kind": "public", "id": secrets.token_hex(8), "months": months, "altered_by": "the pipeline lab's checks"}
    (dest / EXPORT_MARKER).write_text(json.dumps(marker) + "\n")
    return dest


def folder_sha256(folder: Path) -> str:
    """One digest of a folder's flights and weather files (to tell two data folders apart)."""
    digest = hashlib.sha256()
    for name in ("flights.csv.gz", "weather.csv.gz"):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()


# -- what the run log must say -----------------------------------------------------------------


def _bad_time(values: pd.Series) -> pd.Series:
    number = pd.to_numeric(values, errors="coerce")
    return number.isna() | (number < 0) | (number // 100 > 23) | (number % 100 > 59)


def invalid_reasons(flights: pd.DataFrame, src: Source) -> pd.Series:
    """Each row's ``invalid:<column>`` (the first column it fails, in the file's column order), or
    "" for a valid row. The rules of the spec: an impossible scheduled time, an origin outside New
    York, a destination that is not a three-character code, a distance that is not positive. A
    destination airports.csv.gz does not list is valid."""
    distance = pd.to_numeric(flights["distance"], errors="coerce")
    rules = {
        "sched_dep_time": _bad_time(flights["sched_dep_time"]),
        "origin": ~flights["origin"].isin(NYC),
        "dest": ~flights["dest"].str.fullmatch(DEST_CODE),
        "distance": distance.isna() | (distance <= 0),
    }
    order = sorted(rules, key=list(flights.columns).index)
    reason = pd.Series("", index=flights.index)
    for column in reversed(order):  # the first failing column in file order wins
        reason[rules[column]] = f"invalid:{column}"
    return reason


@dataclass
class Expected:
    """The counts a correct pipeline reports for one flights file (the spec's run log)."""

    rows_read: int
    removed: dict[str, int]  # invalid:<column>, cancelled, diverted
    missing_weather: int  # labelled rows with no weather row: kept (and counted) or removed
    train_rows: int  # with the rows of missing weather kept
    validation_rows: int
    missing_by_split: dict[str, int] = field(default_factory=dict)

    @property
    def labelled(self) -> int:
        return self.train_rows + self.validation_rows


def expected_counts(flights: pd.DataFrame, src: Source, weather: pd.DataFrame | None = None) -> Expected:
    """What the run log must say for ``flights`` (text, as written): rows read, rows removed by
    reason, labelled rows by split, and rows without weather."""
    reason = invalid_reasons(flights, src)
    removed = {r: int(n) for r, n in reason[reason != ""].value_counts().items()}
    valid = flights[reason == ""]
    cancelled = valid["dep_time"] == ""
    diverted = ~cancelled & (valid["arr_delay"] == "")
    removed.update({"cancelled": int(cancelled.sum()), "diverted": int(diverted.sum())})
    labelled = valid[~cancelled & ~diverted]
    weather = src.weather if weather is None else weather
    keys = weather[list(WEATHER_KEY)].drop_duplicates().assign(_found=True)
    hour = (pd.to_numeric(labelled["sched_dep_time"]) // 100).astype(int).astype(str)
    joined = labelled[["origin", "year", "month", "day"]].assign(hour=hour).merge(keys, on=list(WEATHER_KEY), how="left")
    found = pd.Series(joined["_found"].fillna(False).astype(bool).to_numpy(), index=labelled.index)
    in_train = labelled["month"].astype(int).isin(PERIODS["train"])
    return Expected(
        rows_read=len(flights),
        removed={k: v for k, v in removed.items() if v},
        missing_weather=int((~found).sum()),
        train_rows=int(in_train.sum()),
        validation_rows=int((~in_train).sum()),
        missing_by_split={"train": int((~found & in_train).sum()), "validation": int((~found & ~in_train).sum())},
    )


# -- alterations --------------------------------------------------------------------------------


def clean_rows(flights: pd.DataFrame, src: Source) -> pd.Index:
    """Rows that are valid and labelled: the ones an alteration may corrupt with one defect."""
    ok = (invalid_reasons(flights, src) == "") & (flights["dep_time"] != "") & (flights["arr_delay"] != "")
    return flights.index[ok]


def corrupt(flights: pd.DataFrame, src: Source, counts: dict[str, int], rng: np.random.Generator) -> pd.DataFrame:
    """``flights`` with ``counts[kind]`` valid rows each given one defect: ``distance`` (negative
    or zero), ``sched_dep_time`` (an hour of 25 or a minute of 61), ``origin`` (an airport outside
    New York: BOS, PHL, ALB), ``dest`` (not a three-character code: "X1", empty, "LAXX")."""
    out = flights.copy()
    chosen = rng.choice(clean_rows(out, src), size=sum(counts.values()), replace=False)
    start = 0
    for kind, count in counts.items():
        rows = chosen[start:start + count]
        start += count
        for i, row in enumerate(rows):
            if kind == "distance":
                out.loc[row, "distance"] = str(-int(out.loc[row, "distance"])) if i % 3 else "0"
            elif kind == "sched_dep_time":
                sched = int(out.loc[row, "sched_dep_time"])
                out.loc[row, "sched_dep_time"] = str(2500 + sched % 100) if i % 2 == 0 else str(sched // 100 * 100 + 61)
            elif kind == "origin":
                out.loc[row, "origin"] = ("BOS", "PHL", "ALB")[i % 3]
            elif kind == "dest":
                out.loc[row, "dest"] = ("X1", "", "LAXX")[i % 3]
            else:
                raise ValueError(f"unknown kind of corrupt row: {kind}")
    return out


def new_carrier(flights: pd.DataFrame, src: Source, rows: int, rng: np.random.Generator, code: str = "ZZ") -> pd.DataFrame:
    """``rows`` valid labelled flights moved to a carrier code that airlines.csv.gz lacks."""
    out = flights.copy()
    out.loc[rng.choice(clean_rows(out, src), size=rows, replace=False), "carrier"] = code
    return out


def shuffle_labels(flights: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The arrival delays of the labelled flights shuffled among them: features no longer say
    anything about the label, so no honest model ranks better than a coin."""
    out = flights.copy()
    labelled = out.index[(out["dep_time"] != "") & (out["arr_delay"] != "")]
    out.loc[labelled, "arr_delay"] = rng.permutation(out.loc[labelled, "arr_delay"].to_numpy())
    return out


# -- held-out rows for predict -------------------------------------------------------------------


def predict_rows(flights: pd.DataFrame, src: Source, rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """``rows`` labelled, valid flights of ``flights`` (of known carriers) in the flights table's
    layout without the outcomes, in file order, and their labels (late: arr_delay >= 15)."""
    ok = (invalid_reasons(flights, src) == "") & (flights["arr_delay"] != "") & flights["carrier"].isin(src.carriers)
    chosen = flights[ok]
    if len(chosen) > rows:
        chosen = chosen.sample(rows, random_state=seed).sort_index()
    late = pd.to_numeric(chosen["arr_delay"]).to_numpy() >= LATE_MINUTES
    return chosen.drop(columns=[c for c in OUTCOMES if c in chosen]).reset_index(drop=True), late


def heldout_rows(folder: Path, src: Source, rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`predict_rows` of the held-out months in ``folder``."""
    return predict_rows(source(folder, HELDOUT_MONTHS).flights, src, rows, seed)


def weather_of(folder: Path, months: tuple[int, ...]) -> pd.DataFrame:
    return source(folder, months).weather


def to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
