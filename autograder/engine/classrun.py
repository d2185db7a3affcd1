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

An interrupt (SIGINT, Ctrl-C, or SIGTERM) stops a run within a second or two: it starts nothing
new, kills the process group of every grade process still running (they run in sessions of their
own, so a terminal's Ctrl-C never reaches them; the team's processes die with them), stops
waiting for other runs' claims, and still writes ``grades.csv`` and the class report for what
finished. The interrupted submissions get no result, so running the same command again grades
exactly those.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from autograder.engine.classreport import Duplicate, write_class_report, write_grades_csv
from autograder.engine.policy import class_heldout_id
from autograder.engine.report import write_reports
from autograder.engine.results import not_graded
from autograder.engine.sandbox import die_with_parent
from autograder.engine.spec import SUBMISSION_FILE, LabSpec
from autograder.engine.workspace import sweep

__all__ = ["ClassRun", "Outcome", "Stop", "claim", "grade_all", "grade_one", "submissions", "write_grades_csv"]


@dataclass
class Outcome:
    name: str
    status: str  # graded | skipped | timeout | error | interrupted
    seconds: float
    detail: str = ""


class Stop:
    """An interrupt's request to a class run: start nothing new, kill the grade processes that
    run. The signal handler only sets it (:meth:`request`); the run's main loop kills
    (:meth:`kill_running`), so no lock is ever taken inside a handler."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum = 0
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._killed: set[int] = set()

    def request(self, signum: int, _frame: object = None) -> None:
        self.signum = self.signum or signum
        self.event.set()

    def __bool__(self) -> bool:
        return self.event.is_set()

    def kill_running(self) -> None:
        with self._lock:
            for pid in self._running - self._killed:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                self._killed.add(pid)

    @contextlib.contextmanager
    def running(self, pid: int) -> Iterator[None]:
        """Register the grade process ``pid`` (its process group) while the block runs."""
        with self._lock:
            self._running.add(pid)
        if self:
            self.kill_running()  # the interrupt came between the start and the registration
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(pid)
                self._killed.discard(pid)


@contextlib.contextmanager
def on_signals(stop: Stop) -> Iterator[None]:
    """SIGINT and SIGTERM request ``stop`` while the block runs (only the main thread may set
    handlers: elsewhere the block runs without them)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, stop.request) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def submissions(root: Path) -> list[Path]:
    """Every subfolder of ``root`` is one submission, in name order."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _not_graded(lab: LabSpec, folder: Path, out: Path, heldout: Path | None, message: str) -> None:
    """Write a zero for every check, saying why, with the held-out set the grade would have used."""
    write_reports(not_graded(lab, folder.name, message, each=message, heldout=class_heldout_id(lab, heldout)), out)


def grade_one(lab: LabSpec, folder: Path, out: Path, time_limit: float, heldout: Path | None = None,
              stop: Stop | None = None) -> Outcome:
    """Grade one submission in its own process, within ``time_limit`` seconds. When ``stop``
    kills that process (an interrupt), the submission gets no result: a rerun grades it."""
    started = time.monotonic()
    if not (folder / SUBMISSION_FILE).is_file():
        message = f"{folder.name}: no {SUBMISSION_FILE}; the submission cannot be run"
        _not_graded(lab, folder, out, heldout, message)
        return Outcome(folder.name, "error", 0.0, message)
    argv = [sys.executable, "-m", "autograder", "grade", str(lab.root), str(folder), "--out", str(out), "--quiet"]
    if heldout is not None:
        argv += ["--heldout", str(heldout)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, preexec_fn=die_with_parent)
    try:
        with stop.running(proc.pid) if stop is not None else contextlib.nullcontext():
            _, err = proc.communicate(timeout=time_limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        err = None
    finished = proc.returncode == 0 and (out / "results.json").is_file()
    if stop and not finished:
        return Outcome(folder.name, "interrupted", time.monotonic() - started, "stopped mid-grading")
    if err is None:
        message = f"Grading stopped after {time_limit:g} s, the per-submission time limit; make training and start-up faster."
        _not_graded(lab, folder, out, heldout, message)
        return Outcome(folder.name, "timeout", time.monotonic() - started, message)
    if not finished:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        text = f"The grader could not grade this submission: {last[0]}"
        _not_graded(lab, folder, out, heldout, text)
        return Outcome(folder.name, "error", time.monotonic() - started, text)
    return Outcome(folder.name, "graded", time.monotonic() - started)


@contextlib.contextmanager
def claim(out: Path, *, wait: bool, stop: Stop | None = None) -> Iterator[bool]:
    """Hold the claim on the submission graded into ``out`` while the block runs; yields whether
    this run holds it. Without ``wait``, a claim another run holds yields False at once; with
    it, False only once ``stop`` is requested.

    By hand, not with a lock library: a claim must end with its process, SIGKILL included, which
    ``flock`` gives and lock files that carry a pid do not. The claim file stays (removing it
    would race with a run about to lock it); it is empty and hidden. A wait polls, so that an
    interrupt ends it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out.parent / f".{out.name}.claim", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait or stop:
                    yield False
                    return
                time.sleep(0.2)
        yield True
    finally:
        os.close(fd)  # drops the lock


def _grade_claimed(lab: LabSpec, folder: Path, out: Path, limit: float, heldout: Path | None, stop: Stop, *, force: bool,
                   wait: bool) -> Outcome | None:
    """Grade ``folder`` if this run can claim it (None when another run holds the claim), unless
    another run graded it meanwhile, or an interrupt came."""
    if stop:
        return Outcome(folder.name, "interrupted", 0.0, "not started")
    with claim(out, wait=wait, stop=stop) as mine:
        if not mine:
            return Outcome(folder.name, "interrupted", 0.0, "not started") if wait else None
        if (out / "results.json").is_file() and (not force or wait):
            return Outcome(folder.name, "skipped", 0.0, "graded by another run at the same time")
        if stop:
            return Outcome(folder.name, "interrupted", 0.0, "not started")
        return grade_one(lab, folder, out, limit, heldout, stop)


@dataclass
class ClassRun:
    """What :func:`grade_all` did: one outcome per submission, the interrupt that stopped it (0
    for none), the staff's files and the duplicates they warn of."""

    outcomes: list[Outcome]
    signum: int = 0
    grades: Path = Path()
    report: Path = Path()
    duplicates: list[Duplicate] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        return counts


def _drain(futures: dict[Future[Outcome | None], Path], stop: Stop, on_outcome: Callable[[Path, Outcome | None], None]) -> None:
    """Hand each future's outcome to ``on_outcome`` as it ends; on an interrupt, cancel those not
    started and kill the grade processes of those running, then wait for them (moments)."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        if stop:
            for future in pending:
                future.cancel()
            stop.kill_running()
        for future in done:
            try:
                outcome = future.result()
            except CancelledError:
                outcome = Outcome(futures[future].name, "interrupted", 0.0, "not started")
            on_outcome(futures[future], outcome)


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
) -> ClassRun:
    """Grade every submission under ``root`` into ``out/<name>/``, then write ``out/grades.csv``
    and the staff's ``out/class-report.md``.

    Submissions another run is grading (see the module's docstring) are left to it and waited
    for at the end. SIGINT and SIGTERM stop the run (see the module's docstring)."""
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
    stop = Stop()
    columns = (TextColumn("[bold]grading[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"))
    with on_signals(stop), Progress(*columns, disable=not show_progress, transient=False) as progress:
        task = progress.add_task("", total=len(folders), completed=len(folders) - len(todo))
        elsewhere: list[Path] = []

        def finish(folder: Path, outcome: Outcome | None) -> None:
            if outcome is None:
                elsewhere.append(folder)
                return
            outcomes.append(outcome)
            progress.update(task, advance=1 if outcome.status != "interrupted" else 0, description=f"{outcome.name}: {outcome.status}")

        pool = ThreadPoolExecutor(max_workers=max(1, jobs))
        try:
            def submit(f: Path, wait: bool) -> Future[Outcome | None]:
                return pool.submit(_grade_claimed, lab, f, out / f.name, limit, heldout, stop, force=force, wait=wait)

            _drain({submit(f, False): f for f in todo}, stop, finish)
            # What other runs held: wait for each, and grade what such a run left without a grade.
            _drain({submit(f, True): f for f in list(elsewhere)}, stop, finish)
        finally:
            if sys.exc_info()[0] is not None:
                stop.event.set()  # the run itself failed: start nothing more
            stop.kill_running()
            pool.shutdown(wait=True, cancel_futures=True)
    if os.geteuid() == 0:
        sweep()  # what the graders stopped at their time limit or on an interrupt (SIGKILL) left behind
    names = [f.name for f in folders]
    grades = write_grades_csv(lab, out, names)
    report, dups = write_class_report(lab, out, names)
    return ClassRun(sorted(outcomes, key=lambda o: o.name), stop.signum, grades, report, dups)
