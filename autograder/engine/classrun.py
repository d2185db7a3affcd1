"""Grading a whole class: one ``shipml grade`` process per submission, in parallel, resumable.

Each submission is graded by its own ``python -m autograder grade`` process, so that one
submission's time limit, crash or runaway cannot stop the rest, and every team gets a fresh
network namespace. A submission counts as graded once its ``results.json`` exists; every write
is atomic, so a run killed at any point (SIGKILL included) resumes without losing or repeating
a grade.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from autograder.engine.report import write_reports
from autograder.engine.results import not_graded, read_results, write_atomic
from autograder.engine.sandbox import die_with_parent
from autograder.engine.spec import SUBMISSION_FILE, LabSpec
from autograder.engine.workspace import sweep


@dataclass
class Outcome:
    name: str
    status: str  # graded | skipped | timeout | error
    seconds: float
    detail: str = ""


def submissions(root: Path) -> list[Path]:
    """Every subfolder of ``root`` is one submission, in name order."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def grade_one(lab: LabSpec, folder: Path, out: Path, time_limit: float, heldout: Path | None = None) -> Outcome:
    """Grade one submission in its own process, within ``time_limit`` seconds."""
    started = time.monotonic()
    if not (folder / SUBMISSION_FILE).is_file():
        message = f"{folder.name}: no {SUBMISSION_FILE}; the submission cannot be run"
        write_reports(not_graded(lab, folder.name, message, each=message), out)
        return Outcome(folder.name, "error", 0.0, message)
    argv = [sys.executable, "-m", "autograder", "grade", str(lab.root), str(folder), "--out", str(out), "--quiet"]
    if heldout is not None:
        argv += ["--heldout", str(heldout)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, preexec_fn=die_with_parent)
    try:
        _, err = proc.communicate(timeout=time_limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        message = f"Grading stopped after {time_limit:g} s, the per-submission time limit; make training and start-up faster."
        write_reports(not_graded(lab, folder.name, message, each=message), out)
        return Outcome(folder.name, "timeout", time.monotonic() - started, message)
    if proc.returncode != 0 or not (out / "results.json").is_file():
        message = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        text = f"The grader could not grade this submission: {message[0]}"
        write_reports(not_graded(lab, folder.name, text, each=text), out)
        return Outcome(folder.name, "error", time.monotonic() - started, text)
    return Outcome(folder.name, "graded", time.monotonic() - started)


def grade_all(
    lab: LabSpec,
    root: Path,
    out: Path,
    *,
    jobs: int = 1,
    force: bool = False,
    time_limit: float | None = None,
    show_progress: bool = True,
    heldout: Path | None = None,
) -> list[Outcome]:
    """Grade every submission under ``root`` into ``out/<name>/``, then write ``out/grades.csv``."""
    folders = submissions(root)
    limit = time_limit or lab.lab.time_limit
    if os.geteuid() == 0:
        # A grader killed earlier (this run's or another's) leaves its workspace and cgroups.
        sweep()
    outcomes: list[Outcome] = []
    todo = []
    for folder in folders:
        if not force and (out / folder.name / "results.json").is_file():
            outcomes.append(Outcome(folder.name, "skipped", 0.0, "already graded"))
        else:
            todo.append(folder)
    columns = (TextColumn("[bold]grading[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"))
    with Progress(*columns, disable=not show_progress, transient=False) as progress:
        task = progress.add_task("", total=len(folders), completed=len(folders) - len(todo))
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(grade_one, lab, f, out / f.name, limit, heldout): f for f in todo}
            for future in as_completed(futures):
                outcome = future.result()
                outcomes.append(outcome)
                progress.update(task, advance=1, description=f"{outcome.name}: {outcome.status}")
    if os.geteuid() == 0:
        sweep()  # what the graders stopped at their time limit (SIGKILL) left behind
    write_grades_csv(lab, out, [f.name for f in folders])
    return sorted(outcomes, key=lambda o: o.name)


def write_grades_csv(lab: LabSpec, out: Path, names: list[str]) -> Path:
    """One row per submission from the instructor copies of the results."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["submission", "team", "members", "score", "max_score", *[c.id for c in lab.checks], "needs_review"])
    for name in names:
        path = out / name / "instructor" / "results.json"
        if not path.is_file():
            writer.writerow([name, "", "", "", lab.max_points, *["" for _ in lab.checks], ""])
            continue
        result = read_results(path)
        scores = {c.id: c.score for c in result.checks}
        writer.writerow([name, result.team, " ".join(result.members), result.score, result.max_score,
                         *[scores.get(c.id, "") for c in lab.checks], "; ".join(result.needs_review)])
    target = out / "grades.csv"
    write_atomic(target, buf.getvalue())
    return target
