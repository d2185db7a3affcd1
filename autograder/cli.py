"""``shipml``: the kit's one command-line program."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.table import Table

from autograder import __version__
from autograder.errors import ShipmlError

REPO = Path(__file__).resolve().parent.parent
console = Console(highlight=False)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: what is wrong and where to look.
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _hidden_paths(submission: Path, out: Path | None) -> list[Path]:
    """What a team's processes must not read: the kit's data (held-out period included), the
    reference solutions, the grading output and the other submissions next to this one."""
    paths = [REPO / "datasets", REPO / "labs"]
    if out is not None:
        paths.append(out.resolve())
    parent = submission.resolve().parent
    if len(parent.parts) > 2:
        paths.append(parent)
    return paths


def _grade(args: argparse.Namespace, hidden: bool) -> int:
    from autograder.catalogue import find_lab
    from autograder.engine import grade
    from autograder.report import write_reports
    from autograder.results import CheckResult
    from autograder.spec import load_submission

    lab = find_lab(args.lab)
    submission = load_submission(args.dir, lab)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="shipml-report-"))
    quiet = getattr(args, "quiet", False)
    with tempfile.TemporaryDirectory(prefix="shipml-data-") as tmp:
        public = None
        if lab.lab.data:
            from autograder.data import write_public

            public = write_public(Path(tmp) / "data")

        def show(result: CheckResult) -> None:
            if not quiet:
                mark = "[green]pass[/]" if result.status == "passed" else "[red]fail[/]"
                console.print(f"  {mark} {result.id:<28} {result.score:g} / {result.max_score:g}")

        if not quiet:
            console.print(f"[bold]{lab.lab.title}[/]: grading '{submission.team.name}' ({'all' if hidden else 'public'} checks)")
        result = grade(lab, submission, hidden=hidden, hidden_paths=_hidden_paths(Path(args.dir), out), public_data=public, on_check=show)
    paths = write_reports(result, out)
    if not quiet:
        console.print(f"[bold]Score: {result.score:g} / {result.max_score:g}[/]")
        console.print(f"Reports for the team:    {paths['markdown']}\n                         {paths['html']}\n                         {paths['results']}")
        if hidden:
            console.print(f"Instructor copy (hidden details): {paths['instructor_markdown'].parent}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    return _grade(args, hidden=False)


def cmd_grade(args: argparse.Namespace) -> int:
    return _grade(args, hidden=True)


def cmd_grade_all(args: argparse.Namespace) -> int:
    from autograder.catalogue import find_lab
    from autograder.classrun import grade_all

    lab = find_lab(args.lab)
    root = Path(args.root)
    if not root.is_dir():
        raise ShipmlError(f"{root}: not a folder; give the folder that holds one subfolder per submission")
    outcomes = grade_all(lab, root, Path(args.out), jobs=args.jobs, force=args.force, time_limit=args.time_limit)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    console.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f"; grades: {Path(args.out) / 'grades.csv'}")
    return 0


def cmd_checks(args: argparse.Namespace) -> int:
    from autograder.catalogue import find_lab

    lab = find_lab(args.lab)
    table = Table(title=f"{lab.lab.title} ({lab.lab.name}): {lab.max_points:g} points")
    # The description sits under the check's id, so the table stays readable at 80 columns.
    table.add_column("check: what it checks", ratio=1)
    for col in ("points", "visibility", "ML Test Score", "limit"):
        table.add_column(col, no_wrap=True)
    for c in lab.checks:
        table.add_row(f"[bold]{c.id}[/]\n{c.description}", f"{c.points:g}", c.visibility, c.ml_test_score, f"{c.timeout:g} s")
    console.print(table)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from autograder.demo import run_demo

    return run_demo(Path(args.out), console, site=not args.no_site)


def cmd_site(args: argparse.Namespace) -> int:
    from autograder.site import build_site, count_pages

    root = build_site(Path(args.out), clean=args.clean)
    console.print(f"Built {count_pages(root)} pages: open {root / 'index.html'}")
    return 0


VERBS: dict[str, tuple[object, str]] = {
    "checks": (cmd_checks, "list a lab's checks with their points, visibility and ML Test Score test"),
    "check": (cmd_check, "run a lab's public checks on a submission folder (a team's self-check)"),
    "grade": (cmd_grade, "run all of a lab's checks on one submission and write its reports"),
    "grade-all": (cmd_grade_all, "grade every submission folder of a class in parallel, resumably"),
    "nbgrader-import": (None, "write harness scores into the nbgrader gradebook as locked task cells' grades"),
    "nbgrader-cells": (None, "add or refresh a lab's locked harness task cells in an nbgrader source notebook"),
    "site": (cmd_site, "build the book and the slides into one static site, offline"),
    "demo": (cmd_demo, "the main job: build the site, grade the serving lab's reference and a mutant"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="shipml", description="shipml: checks a team's running ML system, and reports the scores.")
    parser.add_argument("--version", action="version", version=f"shipml {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for name, (fn, help_text) in VERBS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(fn=fn)
        if name.startswith("nbgrader-"):
            from autograder import nbgrader_import as ni

            if name == "nbgrader-import":
                ni.add_arguments(p)
                p.set_defaults(fn=ni.run)
            else:
                ni.add_cells_arguments(p)
                p.set_defaults(fn=ni.run_cells)
            continue
        if name == "demo":
            p.add_argument("--out", default="out", help="where to put the site and the reports (default: out)")
            p.add_argument("--no-site", action="store_true", help="skip building the book and slides")
            continue
        if name == "site":
            p.add_argument("--out", default="site", help="where to build the site (default: site)")
            p.add_argument("--clean", action="store_true", help="rebuild the book from scratch (no cached notebooks)")
            continue
        p.add_argument("lab", help="a lab folder, or a lab's name under labs/ (e.g. serving)")
        if name in ("check", "grade"):
            p.add_argument("dir", help="the submission folder (it holds submission.toml)")
            p.add_argument("--out", help="where to write results.json and the reports (default: a new temporary folder)")
            p.add_argument("--quiet", action="store_true", help="print nothing but errors")
        if name == "grade-all":
            p.add_argument("root", help="a folder with one subfolder per submission")
            p.add_argument("--out", required=True, help="where to write each submission's reports and grades.csv")
            p.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
            p.add_argument("--force", action="store_true", help="regrade submissions that already have results")
            p.add_argument("--time-limit", type=float, help="seconds per submission (default: the lab's time_limit)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return 2
    try:
        return int(args.fn(args))
    except ShipmlError as exc:
        print(f"shipml: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("shipml: interrupted", file=sys.stderr)
        return 130
