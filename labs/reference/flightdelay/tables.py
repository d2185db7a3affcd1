"""Reading the flight data folder's CSV files as they are, with pandas.

The pipeline owns its data contract (``flightdelay.steps``), so it reads the raw files itself
rather than through a loader that refuses anything unusual: a changed file must reach
``validate``, which says what is wrong with it. Codes stay text ("NA" is not missing); only an
empty field is a missing value; every other column's type is what pandas infers, so a column of
numbers written as text ("1400 mi") stays text and fails validation by name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "flights": ("carrier", "tailnum", "origin", "dest", "time_hour"),
    "weather": ("origin", "time_hour"),
    "airports": ("faa", "name", "dst", "tzone"),
    "airlines": ("carrier", "name"),
}
"""Columns read as text, where a table has them."""


class DataFileError(ValueError):
    """A data file is missing or cannot be read as CSV (one line, naming the file)."""


def read_table(folder: Path | str, table: str) -> pd.DataFrame:
    """``{folder}/{table}.csv.gz`` as a DataFrame, without judging its content."""
    path = Path(folder) / f"{table}.csv.gz"
    try:
        header = pd.read_csv(path, nrows=0).columns
        text = {name: str for name in TEXT_COLUMNS.get(table, ()) if name in header}
        return pd.read_csv(path, dtype=text, keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        raise DataFileError(f"{path.name}: not found in {path.parent}; --data must be a flight "
                            "data folder (flights, weather, airports and airlines .csv.gz)") from None
    except (OSError, ValueError, EOFError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataFileError(f"{path.name}: cannot be read as gzip CSV ({first}); "
                            "replace it with a good copy") from None


def data_id(folder: Path | str, tables: tuple[str, ...] = ("flights", "weather")) -> str:
    """SHA-256 of the named files' bytes, in order: which data a model was trained on."""
    digest = hashlib.sha256()
    for table in tables:
        digest.update((Path(folder) / f"{table}.csv.gz").read_bytes())
    return digest.hexdigest()
