"""``shipml``: the kit's one command-line program. Each verb is a thin layer over the library."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.table import Table

from autograder import __version__
from autograder.errors import ShipmlError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: what is wrong and where to look.
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _grade(args: argparse.Namespace, hidden: bool) -> int:
    from autograder.engine import policy
    from autograder.engine.grading import grade
    from autograder.engine.netns import enter_loopback_netns
    from autograder.engine.report import write_reports
    from autograder.engine.results import CheckResult
    from autograder.engine.spec import find_lab, load_submission

    lab = find_lab(args.lab)
    submission = load_submission(args.dir, lab)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="shipml-report-"))
    quiet = getattr(args, "quiet", False)
    # This process exists to grade: it moves into a network namespace of its own with only
    # loopback, so the team's processes and our clients share it and nothing else. Where that is
    # not allowed (not root), the report says so.
    enter_loopback_netns()
    heldout = policy.choose_heldout(getattr(args, "heldout", None), hidden=hidden, lab=lab)
    held = policy.heldout_id(heldout)

    def show(result: CheckResult) -> None:
        if not quiet:
            mark = "[green]pass[/]" if result.status == "passed" else "[red]fail[/]"
            console.print(f"  {mark} {result.id:<28} {result.score:g} / {result.max_score:g}")

    with policy.grading_data(lab, heldout, hidden=hidden) as data:
        if not quiet:
            console.print(f"[bold]{lab.lab.title}[/]: grading '{submission.team.name}' ({'all' if hidden else 'public'} checks)")
            if policy.is_bundled(held):
                err_console.print(f"[bold red]{policy.heldout_warning(held)}[/]")
            elif hidden:
                console.print(policy.heldout_warning(held))
        result = grade(lab, submission, data=data.checks, hidden_paths=policy.hidden_paths(Path(args.dir), out, heldout),
                       public_data=data.team, on_check=show, hidden=hidden)
    result.heldout = held
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
    import shlex
    import signal

    from autograder.engine import policy
    from autograder.engine.classrun import grade_all
    from autograder.engine.spec import find_lab

    lab = find_lab(args.lab)
    root = Path(args.root)
    if not root.is_dir():
        raise ShipmlError(f"{root}: not a folder; give the folder that holds one subfolder per submission")
    heldout = policy.heldout_folder(args.heldout) if args.heldout else None  # each grade process defaults to the bundled months
    held = policy.class_heldout_id(lab, heldout)
    if policy.is_bundled(held):
        err_console.print(f"[bold red]{policy.heldout_warning(held)}[/]")
    else:
        console.print(policy.heldout_warning(held))
    run = grade_all(lab, root, Path(args.out), jobs=args.jobs, force=args.force, time_limit=args.time_limit, heldout=heldout)
    for dup in run.duplicates:
        err_console.print(f"[yellow]warning: {dup.warning()}: each keeps its own grade; see {run.report}[/]")
    counts = run.counts()
    console.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f"; grades: {run.grades}; class report (staff): {run.report}")
    if run.signum:
        name = signal.Signals(run.signum).name
        again = shlex.join(["shipml", "grade-all", args.lab, args.root, "--out", args.out, "--jobs", str(args.jobs),
                            *(["--time-limit", f"{args.time_limit:g}"] if args.time_limit else []),
                            *(["--heldout", args.heldout] if args.heldout else [])])
        err_console.print(f"[bold]Interrupted by {name}[/]: {counts.get('interrupted', 0)} submission(s) left without a grade; "
                          f"grades.csv holds the {len(run.outcomes) - counts.get('interrupted', 0)} finished. "
                          f"To resume (grades only the rest): {again}")
        return 128 + run.signum
    return 0


def cmd_checks(args: argparse.Namespace) -> int:
    from autograder.engine import labdoc
    from autograder.engine.catalogue import locate, relative
    from autograder.engine.mutants import list_mutants
    from autograder.engine.spec import REQUIREMENTS, find_lab

    lab = find_lab(args.lab)
    if args.markdown:
        print(labdoc.checks_markdown(lab))
        return 0
    if args.write_readme:
        changed = labdoc.write_readme(lab)
        print(f"{labdoc.readme_path(lab)}: {'check table rewritten from lab.toml' if changed else 'check table already matches lab.toml'}")
        return 0
    from autograder.mltestscore import title

    mutants = list_mutants(lab)
    public = sum(c.points for c in lab.selected("public"))
    readme = labdoc.readme_path(lab)
    # Plain lines, one block per check, never wrapped: each line is a hop a reader can follow.
    print(f"{lab.lab.title} ({lab.lab.name}): {lab.max_points:g} points, {public:g} in public checks")
    print("by role: " + ", ".join(f"{role} {points:g}" for role, points in lab.points_by_role().items()))
    for c in lab.checks:
        where = locate(c.function)
        proven = ", ".join(m.name for m in mutants if c.id in (m.fails or ())) or "(none)"
        print()
        print(f"{c.id}  {c.points:g} points  {c.visibility}  {c.ml_test_score}: {title(c.ml_test_score)}")
        print(f"  {c.description}")
        print(f"  role     {c.role}")
        print(f"  requires {', '.join(f'{r} ({REQUIREMENTS[r]})' for r in c.requires) or '(nothing)'}")
        print(f"  code     {where.code} {c.function.rpartition(':')[2]}")
        print(f"  mutants  {proven}")
        print(f"  test     {where.test or '(none)'}")
        print(f"  doc      {relative(readme) if readme.is_file() else '(none)'} (the check table)")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from autograder.engine.spec import find_lab
    from autograder.integrations.release import write_release

    lab = find_lab(args.lab)
    files = write_release(lab, Path(args.out))
    print(f"{args.out}: the student release of '{lab.lab.name}', {len(files)} files; push it as the team template repository.")
    print("It holds the brief, the starter, the public data and the public checks; the kit itself stays with you.")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from autograder.engine.spec import find_lab

    lab = find_lab(args.lab)
    if args.engine == "gradescope":
        from autograder.integrations.gradescope import export_zip

        zipped = export_zip(lab, Path(args.out), Path(args.heldout) if args.heldout else None, leaderboard=args.leaderboard)
        print(f"{zipped}: Gradescope autograder for '{lab.lab.name}', {zipped.stat().st_size / 1e6:.1f} MB, all {len(lab.checks)} checks.")
        print("Upload it as the assignment's autograder (Configure Autograder, Ubuntu 22.04 base image). It holds the hidden checks and the held-out data: keep it with the staff.")
        return 0
    from autograder.integrations.github_classroom import export_workflow

    if args.min_score is None:
        raise ShipmlError("github-classroom needs --min-score N: the public-check score below which a team's workflow run fails")
    files = export_workflow(lab, Path(args.out), args.min_score)
    print(f"{files[0]}: runs the public checks of '{lab.lab.name}' on every push and fails below {args.min_score:g}; pinned runtime in {files[1]}.")
    print("Add this .github/ folder to the template repository that 'shipml release' wrote.")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from autograder.engine.spec import find_lab
    from autograder.integrations.collect import collect

    lab = find_lab(args.lab)
    done = collect(lab, [Path(s) for s in args.sources], Path(args.out))
    for item in done.rejected:
        print(f"skipped {item.path}: {item.why}", file=sys.stderr)
    for dup in done.duplicates:
        err_console.print(f"[yellow]warning: {dup.warning()}: each keeps its own grade; see {done.summary}[/]")
    print(f"{len(done.teams)} teams collected, {len(done.rejected)} file(s) skipped; grades: {done.grades}; summary: {done.summary}")
    if args.course:
        from autograder.integrations.nbgrader_import import import_harness_scores

        summary = import_harness_scores(lab.root, Path(args.out), course_dir=Path(args.course), assignment=lab.lab.name, notebook=lab.lab.name)
        print(f"nbgrader gradebook: {summary.grades_written} grades written for {len(summary.students)} students.")
    else:
        print(f"Gradebook: shipml nbgrader-import {args.lab} {args.out} --course COURSE")
    return 1 if done.rejected else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from autograder.demo import run_demo

    return run_demo(Path(args.out), console, site=not args.no_site)


def cmd_site(args: argparse.Namespace) -> int:
    from autograder.site import build_site, count_pages

    root = build_site(Path(args.out), clean=args.clean)
    console.print(f"Built {count_pages(root)} pages: open {root / 'index.html'}")
    return 0


def cmd_nbgrader_cells(args: argparse.Namespace) -> int:
    """Add or refresh the task cells, say what changed."""
    from autograder.engine.spec import find_lab
    from autograder.integrations.nbgrader_cells import add_task_cells

    lab = find_lab(args.lab)
    if not args.notebook.exists() and not args.create:
        raise ShipmlError(
            f"{args.notebook}: no such notebook; give the path of the assignment's source notebook "
            "(e.g. source/<assignment>/<assignment>.ipynb in the course folder), or add --create for a harness-only assignment"
        )
    changed = add_task_cells(lab, args.notebook)
    if changed:
        print(f"{args.notebook}: {changed} task cell(s) written for {len(lab.checks)} checks ({lab.max_points:g} points).")
        print("Next: nbgrader generate_assignment <assignment> --force (in the course folder).")
    else:
        print(f"{args.notebook}: task cells already match {args.lab}/lab.toml; nothing to do.")
    return 0


def cmd_nbgrader_import(args: argparse.Namespace) -> int:
    """Import, then print one row per team."""
    from autograder.engine.spec import find_lab
    from autograder.integrations.nbgrader_import import import_harness_scores

    assignment = args.assignment or find_lab(args.lab).lab.name
    summary = import_harness_scores(
        args.lab,
        args.results_dir,
        course_dir=args.course,
        assignment=assignment,
        notebook=args.notebook or assignment,
        submissions_dir=args.submissions,
        db_url=args.db,
    )
    table = Table(title=f"Harness scores in gradebook: {summary.assignment}/{summary.notebook}")
    for name in ("team", "students", "harness score", "notes"):
        table.add_column(name, justify="right" if name == "harness score" else "left")
    for team in summary.teams:
        table.add_row(team.team, ", ".join(team.students), f"{team.score:g} / {team.max_score:g}", "; ".join(team.notes))
    console.print(table)
    console.print(f"{summary.grades_written} grades written for {len(summary.students)} students in one transaction.")
    if summary.created_submissions:
        console.print(f"No notebook submitted, empty submission created: {', '.join(summary.created_submissions)}")
    if summary.without_results:
        console.print(f"[yellow]Submitted but no harness result (harness cells stay ungraded): {', '.join(summary.without_results)}[/]")
    if summary.unmapped:
        console.print(
            f"[red]Not imported, the results name no member: {', '.join(summary.unmapped)}. Fix their "
            "submission.toml and regrade, or pass --submissions; then run the import again.[/]"
        )
        return 1
    return 0


def _lab(p: argparse.ArgumentParser) -> None:
    p.add_argument("lab", help="a lab folder, or a lab's name under labs/ (e.g. serving)")


def _args_checks(p: argparse.ArgumentParser) -> None:
    _lab(p)
    p.add_argument("--markdown", action="store_true", help="print the lab README's check table (Markdown) instead")
    p.add_argument("--write-readme", action="store_true", help="rewrite the check table in the lab's README from lab.toml")


_HELDOUT_HELP = "the held-out data folder the hidden checks use (default: the kit's bundled Sep-Dec months; a course should hold its own)"


def _args_check(p: argparse.ArgumentParser) -> None:
    _lab(p)
    p.add_argument("dir", help="the submission folder (it holds submission.toml)")
    p.add_argument("--out", help="where to write results.json and the reports (default: a new temporary folder)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _args_grade(p: argparse.ArgumentParser) -> None:
    _args_check(p)
    p.add_argument("--heldout", help=_HELDOUT_HELP)


def _args_grade_all(p: argparse.ArgumentParser) -> None:
    _lab(p)
    p.add_argument("root", help="a folder with one subfolder per submission")
    p.add_argument("--out", required=True, help="where to write each submission's reports and grades.csv")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    p.add_argument("--force", action="store_true", help="regrade submissions that already have results")
    p.add_argument("--time-limit", type=float, help="seconds per submission (default: the lab's time_limit)")
    p.add_argument("--heldout", help=_HELDOUT_HELP)


def _args_nbgrader_cells(p: argparse.ArgumentParser) -> None:
    p.add_argument("lab", type=Path, help="a lab's name under the kit's labs/ (e.g. serving), or its folder")
    p.add_argument("notebook", type=Path, help="the nbgrader source notebook")
    p.add_argument("--create", action="store_true", help="create the notebook if it is missing (a harness-only assignment)")


def _args_nbgrader_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("lab", type=Path, help="a lab's name under the kit's labs/ (e.g. serving), or its folder")
    p.add_argument("results_dir", type=Path, help="folder with one <team>/results.json per team")
    p.add_argument("--course", type=Path, default=Path("."), help="the nbgrader course folder (default: .)")
    p.add_argument("--assignment", help="nbgrader assignment name (default: the lab's name)")
    p.add_argument("--notebook", help="notebook holding the task cells, without .ipynb (default: the assignment name)")
    p.add_argument("--submissions", type=Path, help="map teams to members from <SUBMISSIONS>/<team>/submission.toml")
    p.add_argument("--db", help="gradebook URL if not <course>/gradebook.db (nbgrader's CourseDirectory.db_url)")


def _args_release(p: argparse.ArgumentParser) -> None:
    _lab(p)
    p.add_argument("--out", required=True, help="a new folder for the release (outside the kit's checkout)")


def _args_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("engine", choices=("gradescope", "github-classroom"), help="where the lab's checks will run")
    _lab(p)
    p.add_argument("--out", required=True, help="gradescope: the zip to write (e.g. autograder.zip); github-classroom: the template repository's folder")
    p.add_argument("--heldout", help="gradescope: the held-out data folder the hidden checks grade on (it rides in the zip)")
    p.add_argument("--leaderboard", action="store_true", help="gradescope: add a leaderboard (score, grading time) to each results.json")
    p.add_argument("--min-score", type=float, help="github-classroom: the public-check score below which the workflow fails")


def _args_collect(p: argparse.ArgumentParser) -> None:
    _lab(p)
    p.add_argument("sources", nargs="+", help="folders (or files) holding results.json files: grade-all output, Gradescope results, downloaded artefacts")
    p.add_argument("--out", required=True, help="where to write grades.csv, summary.md and one folder per team")
    p.add_argument("--course", help="also import the scores into this nbgrader course's gradebook")


def _args_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="out", help="where to put the site and the reports (default: out)")
    p.add_argument("--no-site", action="store_true", help="skip building the book and slides")


def _args_site(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="site", help="where to build the site (default: site)")
    p.add_argument("--clean", action="store_true", help="rebuild the book from scratch (no cached notebooks)")


Verb = tuple[Callable[[argparse.Namespace], int], Callable[[argparse.ArgumentParser], None], str]
VERBS: dict[str, Verb] = {
    "checks": (cmd_checks, _args_checks, "list a lab's checks: points, visibility, role, requirements, ML Test Score, code, mutants and test"),
    "check": (cmd_check, _args_check, "run a lab's public checks on a submission folder (a team's self-check)"),
    "grade": (cmd_grade, _args_grade, "run all of a lab's checks on one submission and write its reports"),
    "grade-all": (cmd_grade_all, _args_grade_all, "grade every submission folder of a class in parallel, resumably"),
    "release": (cmd_release, _args_release, "write what a team receives (brief, starter, public data, public checks) as a template repository"),
    "nbgrader-import": (cmd_nbgrader_import, _args_nbgrader_import, "write harness scores into the nbgrader gradebook as locked task cells' grades"),
    "nbgrader-cells": (cmd_nbgrader_cells, _args_nbgrader_cells, "add or refresh a lab's locked harness task cells in an nbgrader source notebook"),
    "site": (cmd_site, _args_site, "build the book and the slides into one static site, offline"),
    "export": (cmd_export, _args_export, "write a lab for another engine: a Gradescope autograder zip, or a GitHub Classroom workflow"),
    "collect": (cmd_collect, _args_collect, "merge teams' results.json from any engine into grades.csv, a class summary and the gradebook import"),
    "demo": (cmd_demo, _args_demo, "the main job: build the site, grade the serving lab's reference and a mutant"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="shipml", description="shipml: checks a team's running ML system, and reports the scores.")
    parser.add_argument("--version", action="version", version=f"shipml {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for name, (fn, add_arguments, help_text) in VERBS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(fn=fn)
        add_arguments(p)
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
    except BrokenPipeError:  # `shipml checks serving | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
