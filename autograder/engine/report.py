"""The one report writer: a submission's results as results.json, report.md and report.html.

The Markdown is written once; the HTML is the same Markdown rendered with markdown-it-py
(which rich already brings) inside a self-contained page with inline CSS, so both say the same.
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path

from markdown_it import MarkdownIt

from autograder import mltestscore
from autograder.engine.results import SubmissionResult, write_atomic, write_results

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330;line-height:1.45}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{border:1px solid #d0d5dd;padding:.35rem .6rem;text-align:left;vertical-align:top}
th{background:#f2f4f7}pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:.85rem}code{font-size:.9em}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #e4e7ec;padding-bottom:.2rem}
"""


NEEDS_REVIEW_RULE = ("The rule: a check flags a result that honest submissions do not reach (a score beyond the "
                     "check's `plausible_*` threshold in the lab's lab.toml); each flag names its measure and threshold. "
                     "A flag changes no grade.")


def markdown_cell(text: str) -> str:
    """``text`` made safe for one cell of a Markdown table."""
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: SubmissionResult) -> str:
    """The team's report as Markdown: summary, checks table, ML Test Score sections, details."""
    lines = [
        f"# {result.team}: lab '{result.lab}'",
        "",
        f"**Score: {result.score:g} / {result.max_score:g}** "
        f"({sum(c.status == 'passed' for c in result.checks)} of {len(result.checks)} checks passed, "
        f"graded in {result.execution_time:.1f} s)",
        "",
    ]
    if result.members:
        lines += [f"Team members: {', '.join(result.members)}", ""]
    if result.heldout:
        lines += [f"Held-out set: `{result.heldout}`", ""]
    lines += ["| | check | points | ML Test Score | result |", "|---|---|---|---|---|"]
    for c in result.checks:
        mark = "pass" if c.status == "passed" else "**FAIL**"  # words, not emoji: they render everywhere
        first = c.message.splitlines()[0] if c.message else ""
        lines.append(
            f"| {mark} | `{c.id}`: {markdown_cell(c.description)} | {c.score:g} / {c.max_score:g} | "
            f"{c.ml_test_score} | {markdown_cell(first)} |"
        )
    sections: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for c in result.checks:
        if c.ml_test_score:
            sec = sections[mltestscore.section_of(c.ml_test_score)]
            sec[0] += c.score
            sec[1] += c.max_score
    if sections:
        lines += ["", "## ML Test Score sections this lab touches", "", "| section | points | tests |", "|---|---|---|"]
        for key, (got, of) in sections.items():
            tests = sorted({c.ml_test_score for c in result.checks if c.ml_test_score.startswith(key + " ")})
            named = "; ".join(f"{t}: {mltestscore.title(t)}" for t in tests)
            lines.append(f"| {mltestscore.SECTIONS[key]} | {got:g} / {of:g} | {markdown_cell(named)} |")
    failed = [c for c in result.checks if c.status != "passed"]
    if failed:
        lines += ["", "## What to fix", ""]
        for c in failed:
            lines += [f"### `{c.id}` ({c.score:g} / {c.max_score:g})", "", "```text", c.message.strip(), "```", ""]
    if result.needs_review:  # only the instructor's copy has the details this comes from
        lines += ["", "## Needs review", "", f"The grade stands; a person should look at this. {NEEDS_REVIEW_RULE}", ""]
        lines += [f"- {item}" for item in result.needs_review]
    if result.notes or result.isolation:
        lines += ["", "## How this submission was run", ""]
        lines += [f"- {n}" for n in [*result.notes, *result.isolation]]
    return "\n".join(lines).rstrip() + "\n"


def render_html(markdown: str, title: str) -> str:
    body = MarkdownIt("commonmark").enable("table").render(markdown)
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}</body></html>\n"
    )


def write_reports(result: SubmissionResult, out: Path) -> dict[str, Path]:
    """Write the student copy (hidden details redacted) and the instructor copy of every report.

    ``out/results.json``, ``out/report.md``, ``out/report.html`` are what the team sees;
    ``out/instructor/`` keeps the same files with hidden checks' details.
    """
    paths: dict[str, Path] = {}
    for copy, folder in ((result, out / "instructor"), (result.redacted(), out)):
        md = render_markdown(copy)
        write_atomic(folder / "report.md", md)
        write_atomic(folder / "report.html", render_html(md, f"{copy.team}: {copy.lab}"))
        # results.json last: its presence marks the submission as graded (grade-all resumes on it)
        write_results(copy, folder / "results.json")
        prefix = "" if folder == out else "instructor_"
        paths.update({f"{prefix}results": folder / "results.json", f"{prefix}markdown": folder / "report.md", f"{prefix}html": folder / "report.html"})
    return paths
