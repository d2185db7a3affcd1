"""The staff's view of a graded class, beside the teams' folders: ``grades.csv`` and
``class-report.md`` (with its HTML twin).

Both are for the teaching staff only: they name every team's flags ("needs review", with the
rule, the measure and its threshold), the held-out set that graded each team, and the
submissions that share a team name or a member id. Such duplicates are never merged: every
submission keeps its own row and grade, and the report (and the console) says which ones to
look at, since two teams that both kept the starter's team name, or a folder graded twice,
would otherwise be told apart by nobody.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from autograder.engine.policy import NO_HELDOUT, heldout_warning, is_bundled
from autograder.engine.report import NEEDS_REVIEW_RULE, markdown_cell, render_html
from autograder.engine.results import SubmissionResult, read_results, write_atomic
from autograder.engine.spec import LabSpec

CLASS_REPORT = "class-report.md"


@dataclass(frozen=True)
class Duplicate:
    """A team name or a member id that more than one submission carries."""

    kind: str  # "team name" | "member id"
    value: str
    submissions: tuple[str, ...]

    def warning(self) -> str:
        return f"duplicate {self.kind} '{self.value}' in {len(self.submissions)} submissions: {', '.join(self.submissions)}"


def find_duplicates(results: Mapping[str, SubmissionResult]) -> list[Duplicate]:
    """Every team name and member id (compared without case and outer spaces) that two or more
    of ``results`` (by submission) carry, each with the submissions that carry it."""
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    shown: dict[tuple[str, str], str] = {}
    for name in sorted(results):
        result = results[name]
        for kind, values in (("team name", [result.team]), ("member id", list(dict.fromkeys(result.members)))):
            for value in values:
                key = (kind, value.strip().casefold())
                if key[1] and name not in seen[key]:
                    seen[key].append(name)
                    shown.setdefault(key, value.strip())
    return [Duplicate(kind, shown[(kind, v)], tuple(names)) for (kind, v), names in seen.items() if len(names) > 1]


def _graded(out: Path, names: list[str]) -> dict[str, SubmissionResult]:
    """The instructor copy of each submission's result that exists."""
    found = {}
    for name in names:
        path = out / name / "instructor" / "results.json"
        if path.is_file():
            found[name] = read_results(path)
    return found


def _duplicates_of(name: str, dups: list[Duplicate]) -> str:
    return "; ".join(f"{d.kind} '{d.value}' also in {', '.join(s for s in d.submissions if s != name)}" for d in dups if name in d.submissions)


def write_grades_csv(lab: LabSpec, out: Path, names: list[str]) -> Path:
    """One row per submission from the instructor copies of the results (a submission without
    one keeps a row with an empty score), with the held-out set that graded it and the
    submissions it shares a team name or member id with."""
    results = _graded(out, names)
    dups = find_duplicates(results)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["submission", "team", "members", "score", "max_score", *[c.id for c in lab.checks], "heldout", "duplicates",
                     "needs_review"])
    for name in names:
        result = results.get(name)
        if result is None:
            writer.writerow([name, "", "", "", lab.max_points, *["" for _ in lab.checks], "", "", ""])
            continue
        scores = {c.id: c.score for c in result.checks}
        writer.writerow([name, result.team, " ".join(result.members), result.score, result.max_score,
                         *[scores.get(c.id, "") for c in lab.checks], result.heldout, _duplicates_of(name, dups),
                         "; ".join(result.needs_review)])
    target = out / "grades.csv"
    write_atomic(target, buf.getvalue())
    return target


def review_thresholds(lab: LabSpec) -> list[str]:
    """Each threshold of ``lab`` beyond which a check flags a result for review (its
    ``plausible_*`` parameters in lab.toml)."""
    return [f"`{c.id}`: {key} = {value:g}" for c in lab.checks for key, value in c.params.items()
            if key.startswith("plausible") and isinstance(value, int | float)]


def class_report_markdown(lab: LabSpec, names: list[str], results: Mapping[str, SubmissionResult]) -> str:
    """The staff's class report: per submission its score, flags, held-out set and duplicates."""
    dups = find_duplicates(results)
    helds = sorted({r.heldout or "(not recorded)" for r in results.values()})
    missing = [n for n in names if n not in results]
    lines = [f"# Class report (staff only): lab '{lab.lab.name}'", "",
             "For the teaching staff: it names every flag and duplicate. Each team's own reports are in its folder "
             "(`<submission>/report.md`, `report.html`, `results.json`); hand back those, never this file.", "",
             f"{len(results)} of {len(names)} submissions graded, out of {lab.max_points:g} points."]
    if missing:
        lines.append(f"Without a grade (rerun the same `grade-all` command to grade them): {', '.join(missing)}.")
    lines += ["", "## Held-out set", ""]
    lines += [f"- **{heldout_warning(h)}**" if is_bundled(h) else f"- {heldout_warning(h)}" for h in helds]
    if len(helds) > 1:
        lines.append(f"- **WARNING: {len(helds)} held-out sets graded this class**; grades on different sets do not compare.")
    if dups:
        lines += ["", "## Warnings: duplicates", "",
                  "Every submission keeps its own grade; check that these are different teams (a kept starter name, "
                  "a student listed in two teams, a folder graded twice):", ""]
        lines += [f"- {d.warning()}" for d in dups]
    lines += ["", "## Teams", "", "| submission | team | members | score | needs review | held-out set | duplicates |",
              "|---|---|---|---|---|---|---|"]
    for name in names:
        r = results.get(name)
        if r is None:
            lines.append(f"| {markdown_cell(name)} | | | not graded | | | |")
            continue
        flags = "yes: see below" if r.needs_review else ""
        lines.append(f"| {markdown_cell(name)} | {markdown_cell(r.team)} | {markdown_cell(', '.join(r.members))} | "
                     f"{r.score:g} / {r.max_score:g} | {flags} | {r.heldout or NO_HELDOUT} | {markdown_cell(_duplicates_of(name, dups))} |")
    thresholds = review_thresholds(lab)
    lines += ["", "## Needs review", "", NEEDS_REVIEW_RULE,
              f"This lab's thresholds: {', '.join(thresholds) if thresholds else 'none (no check of this lab flags results)'}.", ""]
    flagged = [(name, item) for name, r in sorted(results.items()) for item in r.needs_review]
    lines += [f"- {name} ({results[name].team}): {item}" for name, item in flagged] or ["No submission is flagged."]
    return "\n".join(lines) + "\n"


def write_class_report(lab: LabSpec, out: Path, names: list[str]) -> tuple[Path, list[Duplicate]]:
    """Write ``out/class-report.md`` and ``.html``; return the Markdown's path and the duplicates."""
    results = _graded(out, names)
    markdown = class_report_markdown(lab, names, results)
    target = out / CLASS_REPORT
    write_atomic(target, markdown)
    write_atomic(target.with_suffix(".html"), render_html(markdown, f"Class report: {lab.lab.name}"))
    return target, find_duplicates(results)
