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


DRAWINGS = DECKS / "drawings"
FIGURE = re.compile(r'<img class="shipml-figure[^"]*" srcset="\.\./figures/([a-z0-9-]+)\.png"')
DRAWING = re.compile(r'<img class="shipml-drawing[^"]*" src="drawings/([a-z0-9-]+\.svg)"')


def _book_figure_tags() -> set[str]:
    chapters = (REPO / "book" / "chapters").glob("*.md")
    return {
        name
        for path in chapters
        for name in re.findall(r":tags: \[[^\]]*deck-figure-([a-z0-9-]+)", path.read_text("utf-8"))
    }


@pytest.mark.parametrize("deck", ALL_DECKS)
def test_every_deck_shows_a_figure_from_the_book_or_the_drawings(deck):
    """Each deck shows at least one picture: a plot the executed book exports (a chapter cell
    tagged deck-figure-NAME) or one of the kit's drawings in slides/decks/drawings/; every
    image of the deck is one of the two kinds, with alt text."""
    text = _text(deck)
    images = re.findall(r"<img\b[^>]*>|!\[[^\]]*\]\([^)]*\)", text)
    figures, drawings = FIGURE.findall(text), DRAWING.findall(text)
    assert figures or drawings, f"{deck}: no figure"
    assert len(images) == len(figures) + len(drawings), f"{deck}: an image of another kind: {images}"
    assert all(re.search(r'alt="[^"]{10,}"', img) for img in images), f"{deck}: an image lacks alt text"
    missing = set(figures) - _book_figure_tags()
    assert not missing, f"{deck} shows plots no book cell exports: {missing}"
    for name in drawings:
        assert (DRAWINGS / name).is_file(), f"{deck}: drawings/{name} does not exist"


def test_drawings_are_small_self_contained_svg_and_all_used():
    """The drawings are our own hand-written SVG: parseable, small, nothing loaded from
    elsewhere (no external href, no web font, no embedded bitmap), each shown by some deck."""
    import xml.etree.ElementTree as ET

    drawings = sorted(DRAWINGS.glob("*"))
    assert drawings, "slides/decks/drawings/ is empty"
    shown = {name for deck in ALL_DECKS for name in DRAWING.findall(_text(deck))}
    for path in drawings:
        assert path.suffix == ".svg", f"{path.name}: only .svg sources belong here"
        text = path.read_text(encoding="utf-8")
        assert len(text) < 12_000, f"{path.name}: {len(text)} characters, not a small drawing"
        root = ET.fromstring(text)
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("viewBox"), path.name
        assert root.find("{http://www.w3.org/2000/svg}title") is not None, f"{path.name}: no <title>"
        for bad in ("href", "@import", "@font-face", "url(http", "data:image", "<image"):
            assert bad not in text, f"{path.name}: contains {bad!r}"
        assert path.name in shown, f"{path.name} is shown by no deck"
