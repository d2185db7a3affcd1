"""A class roll-up across engines (``shipml collect LAB SOURCE... --out DIR``).

Each team's ``results.json`` may come from a local ``shipml grade-all`` (``<team>/results.json``
with an ``instructor/`` copy), from Gradescope (the file ``run_autograder`` wrote), or from a
GitHub Actions artefact (``shipml check``: public checks only). ``collect`` reads every
``results.json`` under the sources, validates each one, and writes:

- ``DIR/<submission>/results.json`` and ``DIR/<submission>/instructor/results.json``: the folder
  layout that ``shipml nbgrader-import LAB DIR`` reads (``--course`` runs that import too);
- ``DIR/grades.csv``: one row per submission, as ``grade-all`` writes it;
- ``DIR/summary.md``: the class summary, with every file that was skipped and why, and the
  submissions that share a team name or a member id.

Results are keyed by submission, as ``grade-all`` keys them: the folder that holds the file
(``<submission>/results.json``, or ``<submission>/instructor/results.json``), never the team name
a results.json carries. Two submissions with one team name (two teams that kept the starter's
name, a mutant copied from the reference) are two rows, each with its own grade, and a warning
names them; the same folder name from two sources gets a suffix (``-2``) rather than a merge.

A file is skipped, named, with the reason, and never averaged in, when it is torn (not JSON),
does not follow Gradescope's schema (:data:`SCHEMA`, checked with ``jsonschema``), carries no
shipml record, or does not add up: a check the lab does not have, points that are not the
lab's, a score outside 0..max, or totals that differ from the sum of the checks. A forgery that
is consistent in every way cannot be told from a real result by its content: trust comes from
where the file was made (the staff's own ``grade-all`` or Gradescope), never from a team's runner.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.engine.classreport import Duplicate, find_duplicates, write_grades_csv
from autograder.engine.policy import heldout_warning
from autograder.engine.results import MalformedResult, SubmissionResult, write_atomic, write_results
from autograder.engine.spec import LabSpec
from autograder.errors import ShipmlError

SCHEMA = Path(__file__).resolve().parent / "schemas" / "gradescope-results.schema.json"
_TOLERANCE = 1e-6


class InvalidResults(Exception):
    """A results.json that cannot be counted; the message says why."""


@dataclass
class Rejected:
    path: Path
    why: str


@dataclass
class Collected:
    """What ``collect`` counted and what it skipped."""

    teams: dict[str, tuple[SubmissionResult, Path]] = field(default_factory=dict)
    """By submission (the output folder's name): the result and the file it came from."""
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    grades: Path | None = None
    summary: Path | None = None


def _validator() -> Any:
    try:
        from jsonschema import Draft202012Validator
    except ImportError:
        raise ShipmlError("collect validates every results.json with jsonschema, one of shipml's own dependencies, and it is missing here: "
                          "pip install 'jsonschema>=4' (or reinstall the kit: pip install -e . in its folder)") from None
    return Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def validate_results(path: Path, lab: LabSpec, validator: Any | None = None) -> SubmissionResult:
    """The shipml record of ``path`` once it is proven whole and consistent with ``lab``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidResults(f"unreadable ({exc.__class__.__name__})") from None
    except json.JSONDecodeError as exc:
        raise InvalidResults(f"torn or not JSON ({exc.msg}; line {exc.lineno}, column {exc.colno})") from None
    errors = sorted((validator or _validator()).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(map(str, errors[0].absolute_path)) or "(top)"
        raise InvalidResults(f"not in Gradescope's results.json schema: at {where}: {errors[0].message}")
    record = data.get("extra_data", {}).get("shipml")
    if not isinstance(record, dict):
        raise InvalidResults("no shipml record (extra_data.shipml): not written by shipml")
    try:
        result = SubmissionResult.from_dict(record)
    except MalformedResult as exc:
        raise InvalidResults(f"its shipml record is malformed: {exc}") from None
    if result.lab != lab.lab.name:
        raise InvalidResults(f"graded for lab '{result.lab}', not '{lab.lab.name}'")
    points = {c.id: c.points for c in lab.checks}
    ids = [c.id for c in result.checks]
    if len(set(ids)) != len(ids):
        raise InvalidResults("a check appears twice")
    for c in result.checks:
        if c.id not in points:
            raise InvalidResults(f"check '{c.id}' is not in lab '{lab.lab.name}'")
        if abs(c.max_score - points[c.id]) > _TOLERANCE:
            raise InvalidResults(f"check '{c.id}' claims {c.max_score:g} points possible; the lab gives {points[c.id]:g}")
        if not -_TOLERANCE <= c.score <= c.max_score + _TOLERANCE:
            raise InvalidResults(f"check '{c.id}' scores {c.score:g}, outside 0..{c.max_score:g}")
    tests = data.get("tests", [])
    if len(tests) != len(result.checks):
        raise InvalidResults(f"{len(tests)} tests but {len(result.checks)} checks in its shipml record")
    for test, c in zip(tests, result.checks, strict=True):
        if abs(test.get("score", 0) - c.score) > _TOLERANCE or abs(test.get("max_score", 0) - c.max_score) > _TOLERANCE:
            raise InvalidResults(f"test '{test.get('name', '?')}' says {test.get('score')} / {test.get('max_score')}; its shipml record says {c.score:g} / {c.max_score:g}")
    if abs(float(data.get("score", result.score)) - result.score) > _TOLERANCE:
        raise InvalidResults(f"score {data.get('score')} is not the sum of its checks ({result.score:g})")
    return result


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "submission"


def submission_key(path: Path, taken: Collection[str]) -> str:
    """The submission a results.json belongs to: the folder that holds it (above ``instructor/``),
    made a safe folder name, with ``-2``, ``-3``... when another source already gave that name."""
    folder = path.parent.parent if path.parent.name == "instructor" else path.parent
    base = _slug(folder.name)
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}-{n}"
    return key


def _files(sources: list[Path]) -> list[Path]:
    """Every results.json under the sources; of a grade-all folder, its instructor copy only."""
    found: list[Path] = []
    for source in sources:
        if source.is_file():
            found.append(source)
        elif source.is_dir():
            found.extend(sorted(source.rglob("results.json")))
        else:
            raise ShipmlError(f"{source}: no such file or folder; give folders that hold results.json files")
    instructor = {p.parent.parent for p in found if p.parent.name == "instructor"}
    return [p for p in found if p.parent not in instructor]


def collect(lab: LabSpec, sources: list[Path], out: Path) -> Collected:
    """Validate and merge every results.json under ``sources`` into ``out``."""
    out = Path(out)
    resolved = out.resolve()
    files = [p for p in _files(sources) if resolved not in p.resolve().parents]
    if not files:
        raise ShipmlError(f"no results.json under {', '.join(map(str, sources))}; give the folders where grade-all, Gradescope or the artefacts put them")
    validator = _validator()
    done = Collected()
    for path in files:
        try:
            result = validate_results(path, lab, validator)
        except InvalidResults as exc:
            done.rejected.append(Rejected(path, str(exc)))
            continue
        done.teams[submission_key(path, done.teams)] = (result, path)
    done.duplicates = find_duplicates({key: result for key, (result, _) in done.teams.items()})
    for key, (result, _) in done.teams.items():
        write_results(result.redacted(), out / key / "results.json")
        write_results(result, out / key / "instructor" / "results.json")
    done.grades = write_grades_csv(lab, out, sorted(done.teams))
    done.summary = out / "summary.md"
    write_atomic(done.summary, summary_markdown(lab, done))
    return done


def summary_markdown(lab: LabSpec, done: Collected) -> str:
    """The class summary: scores, each check's pass rate, and every file skipped, with why."""
    results = [r for r, _ in done.teams.values()]
    lines = [f"# Class summary: lab '{lab.lab.name}'", ""]
    if results:
        scores = [r.score for r in results]
        lines += [f"{len(results)} teams; score out of {lab.max_points:g}: mean {statistics.mean(scores):.1f}, "
                  f"median {statistics.median(scores):g}, lowest {min(scores):g}, highest {max(scores):g}.", ""]
    lines += ["| check | points | teams graded | passed | mean points |", "|---|---|---|---|---|"]
    for spec in lab.checks:
        got = [c for r in results for c in r.checks if c.id == spec.id]
        mean = f"{statistics.mean(c.score for c in got):.1f}" if got else "-"
        lines.append(f"| `{spec.id}` ({spec.visibility}) | {spec.points:g} | {len(got)} | {sum(c.status == 'passed' for c in got)} | {mean} |")
    partial = [r.team for r in results if len(r.checks) < len(lab.checks)]
    if partial:
        lines += ["", f"Graded on some checks only (e.g. a team's own public self-check): {', '.join(sorted(partial))}."]
    review = [f"{r.team}: {item}" for r in results for item in r.needs_review]
    if review:
        lines += ["", "## Needs review", "", *[f"- {item}" for item in review]]
    if done.duplicates:
        lines += ["", "## Warnings: duplicates", "", "Each submission keeps its own grade; check that these are different teams "
                  "(a kept starter name, a student listed in two teams, one team collected twice):", ""]
        lines += [f"- {d.warning()}" for d in done.duplicates]
    helds = sorted({r.heldout or "(not recorded)" for r in results})
    lines += ["", "## Held-out sets", "", *[f"- {heldout_warning(h)}" for h in helds]]
    lines += ["", "## Sources", "", *[f"- {key} ({r.team}): `{p}`" for key, (r, p) in sorted(done.teams.items())]]
    if done.rejected:
        lines += ["", "## Skipped (not counted)", "", *[f"- `{x.path}`: {x.why}" for x in done.rejected]]
    return "\n".join(lines) + "\n"
