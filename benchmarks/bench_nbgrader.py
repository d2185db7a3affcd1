"""P5: autograding the "beyond accuracy" notebook, against the kernel floor and against otter.

    python benchmarks/bench_nbgrader.py            # N=6 reference submissions, 2 rounds
    python benchmarks/bench_nbgrader.py --n 4 --rounds 1 --no-otter

Three ways to grade the same reference notebook, measured side by side in one run:

* floor: in this process (imports already paid), start a kernel, execute every cell of the
  notebook as autograde runs it (answers plus visible *and* hidden tests), shut the kernel down.
  That is the least any notebook grader can do.
* nbgrader: ``nbgrader autograde`` on N submissions in one call (T_N), and on one (T_1).
  Per notebook: the marginal cost (T_N - T_1) / (N - 1), and the amortized cost T_N / N, which
  also carries nbgrader's fixed start-up (imports, database) once per call.
* otter: ``otter run`` (otter-grader 7.0, the ``bench`` extra) on an equivalent otter notebook,
  built here from the same source: the same setup, answers and tests (hidden ones as otter
  hidden tests), one notebook per call, as otter runs locally.

Goals (issue 5): nbgrader marginal <= 1.3 x floor; otter >= 3 x ours. The ratios compare runs
made in the same minutes on the same machine; the absolute seconds move with its load.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from autograder.integrations.nbgrader_course import build_submission, new_course

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "labs" / "beyond-accuracy"
NAME = "beyond-accuracy"
SOURCE = LAB / "course" / "source" / NAME / f"{NAME}.ipynb"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return elapsed


def floor_once(notebook: Path) -> float:
    nb = nbformat.read(notebook, as_version=4)
    start = time.perf_counter()
    # stderr=DEVNULL goes to the kernel's Popen: it drops ipykernel's start-up warning only.
    NotebookClient(nb, timeout=60, allow_errors=True, kernel_name="python3").execute(stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


# ------------------------------------------------------------------ otter's equivalent notebook


def _raw(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_raw_cell(text)


def otter_master(source: Path) -> nbformat.NotebookNode:
    """The source notebook in otter-assign's format: same setup, answers, visible and hidden tests."""
    src = nbformat.read(source, as_version=4)
    cells = [_raw(
        "# ASSIGNMENT CONFIG\nname: beyond-accuracy\ninit_cell: false\ncheck_all_cell: false\n"
        "export_cell: false\nrun_tests: false\nsolutions_pdf: false\ngenerate:\n  pdf: false\n"
    )]
    pending: nbformat.NotebookNode | None = None
    for cell in src.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("task") or (meta.get("solution") and cell.cell_type == "markdown"):
            continue  # harness task cells and hand-graded answers: nothing to execute
        if meta.get("solution"):
            pending = cell
            continue
        if meta.get("grade") and pending is not None:
            visible, _, rest = cell.source.partition("### BEGIN HIDDEN TESTS")
            hidden = rest.partition("### END HIDDEN TESTS")[0]
            visible = re.sub(r"\npoints\s*$", "\n", visible.rstrip() + "\n").strip()
            answer = pending.source.replace("### BEGIN SOLUTION", "# BEGIN SOLUTION").replace(
                "### END SOLUTION", "# END SOLUTION")
            cells += [
                _raw(f"# BEGIN QUESTION\nname: {meta['grade_id']}\npoints: {meta['points']}"),
                nbformat.v4.new_markdown_cell(f"Question {meta['grade_id']}."),
                _raw("# BEGIN SOLUTION"), nbformat.v4.new_code_cell(answer), _raw("# END SOLUTION"),
                _raw("# BEGIN TESTS"),
                nbformat.v4.new_code_cell(visible),
                nbformat.v4.new_code_cell("# HIDDEN\npoints = 0.0\n" + hidden.strip()),
                _raw("# END TESTS"), _raw("# END QUESTION"),
            ]
            pending = None
            continue
        fresh = nbformat.v4.new_code_cell(cell.source) if cell.cell_type == "code" else nbformat.v4.new_markdown_cell(cell.source)
        cells.append(fresh)
    nb = nbformat.v4.new_notebook(cells=cells, metadata=src.metadata)
    return nb


def prepare_otter(work: Path) -> tuple[Path, Path]:
    master = work / "otter" / f"{NAME}.ipynb"
    master.parent.mkdir(parents=True)
    nbformat.write(otter_master(SOURCE), str(master))
    timed([str(BIN / "otter"), "assign", "--no-pdfs", master.name, "dist"], master.parent)
    zips = sorted((master.parent / "dist" / "autograder").glob("*.zip"))
    if not zips:
        raise SystemExit("otter assign wrote no autograder zip")
    return zips[-1], master.parent / "dist" / "autograder" / f"{NAME}.ipynb"


# ------------------------------------------------------------------ the run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=6, help="submissions per autograde call (default 6)")
    parser.add_argument("--rounds", type=int, default=2, help="repeat everything; medians reported (default 2)")
    parser.add_argument("--no-otter", action="store_true", help="skip otter (not installed)")
    args = parser.parse_args()
    if args.n < 2:
        parser.error("--n must be at least 2")
    has_otter = not args.no_otter and (BIN / "otter").exists()
    if not args.no_otter and not has_otter:
        print("otter-grader is not installed (pip install -e '.[bench]'); measuring without it")

    work = Path(tempfile.mkdtemp(prefix="bench-nbgrader-"))
    try:
        course = new_course(LAB, work / "course")
        timed([str(BIN / "nbgrader"), "generate_assignment", NAME], course)
        release = course / "release" / NAME / f"{NAME}.ipynb"
        students = [f"s{i:02d}" for i in range(1, args.n + 1)]
        for student in students:
            build_submission(SOURCE, release, course / "submitted" / student / NAME / f"{NAME}.ipynb")
        # What autograde executes: the answers plus every test, hidden ones included.
        executed = build_submission(SOURCE, SOURCE, work / "executed.ipynb")
        if has_otter:
            otter_zip, otter_sub = prepare_otter(work)

        rows: list[dict[str, float]] = []  # one per round: every way measured in the same minutes
        for round_ in range(1, args.rounds + 1):
            row = {"floor": statistics.median(floor_once(executed) for _ in range(args.n))}
            t_n = timed([str(BIN / "nbgrader"), "autograde", NAME, "--force"], course)
            t_1 = timed([str(BIN / "nbgrader"), "autograde", NAME, "--force", "--student", students[0]], course)
            row.update(marginal=(t_n - t_1) / (args.n - 1), amortized=t_n / args.n, single=t_1)
            if has_otter:
                runs = []
                for i in range(3):
                    out = work / f"otter-out-{round_}-{i}"
                    out.mkdir()
                    runs.append(timed([str(BIN / "otter"), "run", "-a", str(otter_zip), "-o", str(out), str(otter_sub)], work))
                row["otter"] = statistics.median(runs)
            rows.append(row)
            print(f"round {round_}: " + ", ".join(f"{k} {v:.2f} s" for k, v in row.items()), flush=True)

        def med(key: str, over: str | None = None) -> float:
            return statistics.median(r[key] / (r[over] if over else 1.0) for r in rows)

        print()
        print(f"per notebook, N={args.n}, median of {args.rounds} round(s); ratios are taken within each round "
              f"({os.cpu_count()} cores, load now {os.getloadavg()[0]:.1f}):")
        print(f"  floor (kernel start + all cells + shutdown)   {med('floor'):6.2f} s")
        print(f"  nbgrader autograde, marginal                  {med('marginal'):6.2f} s   {med('marginal', 'floor'):4.2f} x floor (goal <= 1.3)")
        print(f"  nbgrader autograde, amortized over N          {med('amortized'):6.2f} s   {med('amortized', 'floor'):4.2f} x floor")
        print(f"  nbgrader autograde, one notebook per call     {med('single'):6.2f} s   {med('single', 'floor'):4.2f} x floor")
        if has_otter:
            print(f"  otter run, one notebook per call              {med('otter'):6.2f} s   {med('otter', 'floor'):4.2f} x floor")
            print(f"  otter / nbgrader: {med('otter', 'marginal'):.1f} x marginal, {med('otter', 'amortized'):.1f} x amortized, "
                  f"{med('otter', 'single'):.1f} x one per call (goal >= 3)")
            print(f"  time added to the floor per notebook: otter {med('otter') - med('floor'):+.2f} s, "
                  f"nbgrader {med('amortized') - med('floor'):+.2f} s amortized, {med('marginal') - med('floor'):+.2f} s marginal")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
