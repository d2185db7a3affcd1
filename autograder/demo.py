"""``shipml demo``: the kit's main job on the bundled defaults.

It builds the book and the slides into one static site, then grades the serving lab's
reference solution and one of its mutants (training/serving skew) exactly as an instructor
would, and prints where everything is.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console

from autograder.engine.classrun import grade_all
from autograder.engine.mutants import list_mutants, materialize, reference_dir
from autograder.engine.results import read_results
from autograder.engine.spec import find_lab

DEMO_MUTANT = "utc_hour_skew"


def run_demo(out: Path, console: Console, *, site: bool = True) -> int:
    out = out.resolve()
    started = time.monotonic()
    if site:
        from autograder.site import build_site, count_pages

        console.print("[bold]1. Building the book and the slides[/] (offline; the book executes its examples)")
        t0 = time.monotonic()
        root = build_site(out / "site")
        console.print(f"   {count_pages(root)} pages in {time.monotonic() - t0:.0f} s: open {root / 'index.html'}")
    lab = find_lab("serving")
    console.print(f"[bold]2. Grading the serving lab[/]: the reference solution and the mutant '{DEMO_MUTANT}'")
    class_dir = out / "submissions"
    shutil.rmtree(class_dir, ignore_errors=True)
    class_dir.mkdir(parents=True)
    shutil.copytree(reference_dir(lab), class_dir / "reference", ignore=shutil.ignore_patterns("__pycache__", "*.joblib"))
    mutant = next(m for m in list_mutants(lab) if m.name == DEMO_MUTANT)
    materialize(lab, mutant, class_dir / f"mutant-{mutant.name}")
    reports = out / "reports"
    grade_all(lab, class_dir, reports, jobs=2, force=True)
    for name in ("reference", f"mutant-{mutant.name}"):
        result = read_results(reports / name / "instructor" / "results.json")
        failed = ", ".join(c.id for c in result.checks if c.status != "passed") or "none"
        console.print(f"   {name}: {result.score:g} / {result.max_score:g} (failed: {failed})")
        console.print(f"     report: {reports / name / 'report.md'}  (HTML: {reports / name / 'report.html'})")
    console.print(f"   class grades: {reports / 'grades.csv'}")
    console.print(f"[bold]Done in {time.monotonic() - started:.0f} s.[/] Everything is under {out}")
    return 0
