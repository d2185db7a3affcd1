"""A lab's check table, generated from ``lab.toml`` for its README, so the two cannot disagree.

The README holds the table between two markers; ``shipml checks LAB --write-readme`` rewrites
it there, and the kit's tests fail when a README and its ``lab.toml`` disagree.
"""

from __future__ import annotations

from pathlib import Path

from autograder.engine.report import markdown_cell
from autograder.engine.results import write_atomic
from autograder.engine.spec import ROLES, LabSpec, SpecError

BEGIN = "<!-- checks: generated from lab.toml by `shipml checks LAB --write-readme`; do not edit -->"
END = "<!-- end of checks -->"


def checks_markdown(lab: LabSpec) -> str:
    """The lab's checks as a Markdown table: id, points, visibility, the role that owns it, ML
    Test Score, passes when."""
    lines = [
        "| check | points | visibility | role | ML Test Score | passes when |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in lab.checks:
        lines.append(
            f"| `{c.id}` | {c.points:g} | {c.visibility} | {ROLES[c.role]} | {c.ml_test_score} | {markdown_cell(c.passes_when_text())} |"
        )
    lines.append("")
    lines.append(f"Total: {lab.max_points:g} points ({sum(c.points for c in lab.selected('public')):g} in public checks).")
    return "\n".join(lines)


def readme_path(lab: LabSpec) -> Path:
    return lab.root / "README.md"


def _section(text: str, path: Path) -> tuple[int, int]:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SpecError(f"{path}: no generated check table; put the two markers '{BEGIN}' and '{END}' where it belongs")
    return start + len(BEGIN), end


def readme_table(lab: LabSpec) -> str:
    """The check table as the lab's README has it now."""
    path = readme_path(lab)
    text = path.read_text(encoding="utf-8")
    start, end = _section(text, path)
    return text[start:end].strip()


def write_readme(lab: LabSpec) -> bool:
    """Rewrite the README's check table from lab.toml; return whether anything changed."""
    path = readme_path(lab)
    text = path.read_text(encoding="utf-8")
    start, end = _section(text, path)
    new = f"{text[:start]}\n{checks_markdown(lab)}\n{text[end:]}"
    if new == text:
        return False
    write_atomic(path, new)
    return True
