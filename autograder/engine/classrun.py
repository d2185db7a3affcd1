"""Grading a whole class: one ``shipml grade`` process per submission, in parallel, resumable.

Each submission is graded by its own ``python -m autograder grade`` process, so that one
submission's time limit, crash or runaway cannot stop the rest, and every team gets a fresh
network namespace. A submission counts as graded once its ``results.json`` exists; every write
is atomic, so a run killed at any point (SIGKILL included) resumes without losing or repeating
a grade.

Two runs over one class at once (a second terminal, or a second machine on a shared folder that
honours ``flock``) share the work: a run grades a submission only while it holds that
submission's claim, an exclusive ``flock`` on ``OUT/.<name>.claim`` that the kernel drops when
the run ends, however it ends. A run that finds a claim held goes on with the next submission,
and once its own work is done waits for the others' claims, so that when any run returns, every
submission has a grade; none is ever graded twice at once.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def claim(out: Path, *, wait: bool) -> Iterator[bool]:
    """Hold the claim on the submission graded into ``out`` while the block runs; yields whether
    this run holds it. Without ``wait``, a claim another run holds yields False at once.

    By hand, not with a lock library: a claim must end with its process, SIGKILL included, which
    ``flock`` gives and lock files that carry a pid do not. The claim file stays (removing it
    would race with a run about to lock it); it is empty and hidden."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out.parent / f".{out.name}.claim", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # drops the lock


def _grade_claimed(lab: LabSpec, folder: Path, out: Path, limit: float, heldout: Path | None, *, force: bool,
                   wait: bool) -> Outcome | None:
    """Grade ``folder`` if this run can claim it (None when another run holds the claim), unless
    another run graded it meanwhile."""
    with claim(out, wait=wait) as mine:
        if not mine:
            return None
        if (out / "results.json").is_file() and (not force or wait):
            return Outcome(folder.name, "skipped", 0.0, "graded by another run at the same time")
        return grade_one(lab, folder, out, limit, heldout)


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
    """Grade every submission under ``root`` into ``out/<name>/``, then write ``out/grades.csv``.

    Submissions another run is grading (see the module's docstring) are left to it and waited
    for at the end."""
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
        def finish(outcome: Outcome) -> None:
            outcomes.append(outcome)
            progress.update(task, advance=1, description=f"{outcome.name}: {outcome.status}")

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(_grade_claimed, lab, f, out / f.name, limit, heldout, force=force, wait=False): f for f in todo}
            elsewhere = []
            for future in as_completed(futures):
                outcome = future.result()
                if outcome is None:
                    elsewhere.append(futures[future])
                else:
                    finish(outcome)
            # What other runs held: wait for each, and grade what such a run left without a grade.
            for outcome in pool.map(lambda f: _grade_claimed(lab, f, out / f.name, limit, heldout, force=force, wait=True), elsewhere):
                assert outcome is not None  # a waited-for claim is always this run's
                finish(outcome)
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
