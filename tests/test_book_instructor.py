"""The instructor guide can be run: its plans agree with the chapters, the labs and the decks.

- the semester plan has 14 weeks, teaches each lab's chapters no later than the lab's first
  week, and says "planned" for every lab that has no folder yet;
- each lecture plan fills exactly 80 minutes, has two or three activities that say what to
  collect, and each activity has its slide in the chapter's deck;
- the one-day workshop uses only labs that exist, for as long as their READMEs say they take;
- every deliverable graded by hand has a rubric, and the notebook lab's hand-graded cells
  match the rubric's points.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BOOK = REPO / "book"
DECKS = REPO / "slides" / "decks"
GUIDE = (BOOK / "course" / "instructor-guide.md").read_text(encoding="utf-8")
TOPICS = yaml.safe_load((BOOK / "topics.yml").read_text(encoding="utf-8"))
CHAPTERS = {c["id"]: c for c in TOPICS["chapters"]}
LABS = TOPICS["labs"]


def _exists(lab: str) -> bool:
    return (REPO / "labs" / lab / "README.md").is_file()


def _section(heading: str) -> str:
    start = GUIDE.index(heading)
    nxt = GUIDE.find("\n## ", start + len(heading))
    return GUIDE[start : nxt if nxt > 0 else len(GUIDE)]


def _rows(table_text: str) -> list[list[str]]:
    rows = []
    for line in table_text.splitlines():
        if line.startswith("|") and not re.match(r"^\|\s*-", line):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # without the header


def _lab_chapters(lab: str) -> list[str]:
    """The chapters the labs overview says a lab practises (its lectures)."""
    index = (BOOK / "labs" / "index.md").read_text(encoding="utf-8")
    row = next(line for line in index.splitlines() if f"]({lab}.md)" in line)
    return re.findall(r"\.\./chapters/([a-z-]+)\.md", row.split("|")[-2])


def test_semester_plan_teaches_each_lab_before_it_and_marks_planned_labs():
    rows = _rows(_section("## A semester course"))
    assert [int(r[0]) for r in rows] == list(range(1, 15)), "weeks 1 to 14"
    lectured: dict[str, int] = {}
    first_week: dict[str, int] = {}
    for week, lecture, session in ((int(r[0]), r[1], r[2]) for r in rows):
        for chapter in re.findall(r"\.\./chapters/([a-z-]+)\.md", lecture):
            lectured.setdefault(chapter, week)
        for lab in re.findall(r"\.\./labs/([a-z-]+)\.md", session):
            first_week.setdefault(lab, week)
            if not _exists(lab):
                assert "planned" in session, f"week {week}: {lab} has no folder: say 'planned'"
    assert set(lectured) == {c for c in CHAPTERS if c != "labs-and-course"}, (
        "every chapter lectured"
    )
    assert set(first_week) == set(LABS), "every lab has a week"
    for lab, week in first_week.items():
        for chapter in _lab_chapters(lab):
            assert lectured[chapter] <= week, (
                f"{lab} starts in week {week}, before its chapter {chapter} (week {lectured[chapter]})"
            )


def _lecture_plans() -> dict[str, str]:
    plans = _section("## Lecture plans")
    parts = re.split(r"^### (Lecture \d+: .+)$", plans, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _deck_of(title: str) -> str:
    for chapter in CHAPTERS.values():
        if chapter["title"].lower() in title.lower():
            return chapter["deck"]
    raise AssertionError(f"no chapter for lecture {title!r}")


def test_there_is_a_plan_for_every_lecture_chapter():
    decks = {_deck_of(title) for title in _lecture_plans()}
    assert decks == {c["deck"] for c in CHAPTERS.values() if c["id"] != "labs-and-course"}


@pytest.mark.parametrize("title", list(_lecture_plans()))
def test_lecture_plan_fills_80_minutes_with_activities_on_slides(title):
    body = _lecture_plans()[title]
    rows = _rows(body)
    spans = [tuple(int(x) for x in r[0].split("–")) for r in rows]
    assert spans[0][0] == 0 and spans[-1][1] == 80, spans
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False)), "contiguous"
    activities = [r[1] for r in rows if r[1].startswith("**Activity:")]
    assert 2 <= len(activities) <= 3, f"{title}: {len(activities)} activities"
    deck = (DECKS / f"{_deck_of(title)}.md").read_text(encoding="utf-8")
    for activity in activities:
        name = re.match(r"\*\*Activity: ([^*]+)\*\*", activity).group(1)
        assert "*Collect:*" in activity, f"{title}: {name} says what to collect"
        slide = re.search(rf"^## Activity: {re.escape(name)}\n(.*?)(?=^---$|\Z)", deck, re.M | re.S)
        assert slide, f"deck {_deck_of(title)} has no slide '## Activity: {name}'"
        assert re.search(r"\d+ min", slide.group(1)), f"the slide for {name} gives its timing"
        assert "collect" in slide.group(1).lower(), f"the slide for {name} says what to collect"


def _readme_hours(lab: str) -> tuple[int, int]:
    text = (REPO / "labs" / lab / "README.md").read_text(encoding="utf-8")
    low, high = re.search(r"(\d)–(\d) hours", text).groups()
    return int(low), int(high)


def test_workshop_uses_existing_labs_for_the_time_their_readmes_give():
    rows = _rows(_section("(topic-instructor-workshop)="))
    previous_end = None
    for when, session, minutes in rows:
        start, end = ((int(h) * 60 + int(m)) for h, m in re.findall(r"(\d\d):(\d\d)", when))
        assert end - start == int(minutes), f"{when}: {minutes} minutes?"
        assert previous_end in (None, start), f"{when} does not follow the previous session"
        previous_end = end
        for lab in re.findall(r"\.\./labs/([a-z-]+)\.md", session):
            assert _exists(lab), f"the workshop uses {lab}, which has no folder yet"
            low, high = _readme_hours(lab)
            assert low * 60 <= int(minutes) <= high * 60, (
                f"{lab}: {minutes} min, the README says {low}-{high} hours"
            )


def test_every_hand_graded_deliverable_has_a_rubric():
    rubrics = _section("## Rubrics for the work graded by hand")
    grading = _section("## A semester course")
    for deliverable in ("hazard analysis", "presentation", "reflection", "written answers"):
        assert deliverable in grading.lower(), f"the grading suggestion lost {deliverable}"
        heads = re.findall(r"^\*\*(.+?)\*\*", rubrics, re.M | re.S)
        assert any(deliverable.split()[0] in h.lower() for h in heads), (
            f"no rubric for {deliverable}"
        )
    for table in re.split(r"\n\n", rubrics):
        rows = _rows(table)
        if rows and len(rows[0]) == 3 and rows[0][1].isdigit():
            assert sum(int(r[1]) for r in rows) == 20, "a points rubric sums to 20"


def test_notebook_lab_rubric_matches_its_hand_graded_cells():
    path = REPO / "labs/beyond-accuracy/course/source/beyond-accuracy/beyond-accuracy.ipynb"
    notebook = json.loads(path.read_text(encoding="utf-8"))
    manual = [
        c["metadata"]["nbgrader"]
        for c in notebook["cells"]
        if c["cell_type"] == "markdown"
        and c.get("metadata", {}).get("nbgrader", {}).get("solution")
        and c["metadata"]["nbgrader"].get("grade")
    ]
    assert manual, "the notebook lab has hand-graded answers"
    points = {m["points"] for m in manual}
    rubric = _section("## Rubrics for the work graded by hand")
    m = re.search(r"one written answer per role \((\d+) points each", rubric)
    assert m and points == {int(m.group(1))}, (points, m and m.group(1))
    criteria = _rows(rubric.split("**Beyond accuracy")[1].split("\n**")[0])
    assert len(criteria) == int(m.group(1)), "one point per criterion"
