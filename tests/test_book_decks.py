"""Lecture-ready decks: enough slides for an 80-minute lecture, every slide with teachable,
timed speaker notes, and activities whose timing agrees with the instructor guide.

A deck's notes end with the minutes the slide takes, "(N min)" (or "(... = N min)" for an
activity with a debrief). The minutes of a chapter deck add up to an 80-minute lecture with a
little slack for questions; the introduction deck shares its lecture with the course deck.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DECKS = REPO / "slides" / "decks"
GUIDE = (REPO / "book" / "course" / "instructor-guide.md").read_text(encoding="utf-8")
TOPICS = yaml.safe_load((REPO / "book" / "topics.yml").read_text(encoding="utf-8"))
LECTURE_DECKS = [c["deck"] for c in TOPICS["chapters"] if c["id"] != "labs-and-course"]
ALL_DECKS = sorted(p.stem for p in DECKS.glob("*.md"))
TIMING = re.compile(r"\((?:[^()]*= )?(\d+) min\)\s*$")


def _text(deck: str) -> str:
    return (DECKS / f"{deck}.md").read_text(encoding="utf-8")


def _slides(deck: str) -> list[str]:
    body = _text(deck).split("\n---\n", 1)[1]
    slides = []
    for horizontal in re.split(r"\n---\n", body):
        slides.extend(re.split(r"\n----\n", horizontal))
    return slides


def _minutes(slide: str) -> int | None:
    if "\nNote:" not in "\n" + slide:
        return None
    note = slide.split("Note:", 1)[1].strip()
    match = TIMING.search(note)
    return int(match.group(1)) if match else None


@pytest.mark.parametrize("deck", ALL_DECKS)
def test_separators_stand_alone(deck):
    """reveal-md splits only on `---` / `----` lines with a blank line before and after."""
    lines = _text(deck).split("\n---\n", 1)[1].splitlines()
    for i, line in enumerate(lines):
        if line in ("---", "----"):
            assert lines[i - 1] == "" and lines[i + 1] == "", (
                f"{deck}: separator on body line {i + 1} is not surrounded by blank lines"
            )


@pytest.mark.parametrize("deck", ALL_DECKS)
def test_every_slide_has_timed_notes(deck):
    for i, slide in enumerate(_slides(deck)):
        minutes = _minutes(slide)
        assert minutes is not None, f"{deck} slide {i + 1}: no notes ending in '(N min)'"
        note = slide.split("Note:", 1)[1]
        assert len(note.split()) >= 8, f"{deck} slide {i + 1}: notes too thin to teach from"


@pytest.mark.parametrize("deck", LECTURE_DECKS)
def test_lecture_deck_fills_an_80_minute_lecture(deck):
    slides = _slides(deck)
    assert 30 <= len(slides) <= 40, f"{deck}: {len(slides)} slides"
    minutes = sum(_minutes(s) or 0 for s in slides)
    if deck == "introduction":  # lecture 1 opens with the course deck
        minutes += sum(_minutes(s) or 0 for s in _slides("course"))
    assert 75 <= minutes <= 80, f"{deck}: notes add up to {minutes} minutes"


@pytest.mark.parametrize("deck", LECTURE_DECKS)
def test_activities_agree_with_the_lecture_plan(deck):
    activities = [s for s in _slides(deck) if s.lstrip().startswith("## Activity: ")]
    assert 2 <= len(activities) <= 3, f"{deck}: {len(activities)} activities"
    for slide in activities:
        name = re.match(r"\s*## Activity: (.+)", slide).group(1).strip()
        stated = int(re.search(r"\*\*(\d+) min\*\*", slide).group(1))
        assert _minutes(slide) == stated, f"{deck} / {name}: notes and slide disagree on minutes"
        row = re.search(rf"^\| (\d+)–(\d+) \| \*\*Activity: {re.escape(name)}\*\*", GUIDE, re.M)
        assert row, f"the instructor guide's lecture plans do not schedule {name!r}"
        start, end = (int(x) for x in row.groups())
        assert end - start == stated, (
            f"{name}: {end - start} min in the plan, {stated} on the slide"
        )
