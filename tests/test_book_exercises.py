"""Chapters a learner can work through: goals first, then recap, exercises and readings.

Every chapter opens with its learning goals and ends with a recap, three to five exercises
(numbered by chapter) and readings. Every exercise has a worked answer in the instructor
material (book/instructor/answers.md), which the published book must not contain.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BOOK = REPO / "book"
ANSWERS = BOOK / "instructor" / "answers.md"
TOPICS = yaml.safe_load((BOOK / "topics.yml").read_text(encoding="utf-8"))
CHAPTERS = [c for c in TOPICS["chapters"] if c["files"][0].startswith("chapters/")]
EXERCISE = re.compile(r"^\*\*Exercise (\d+)\.(\d+) \(([^)]+)\)\.\*\* (.+)$", re.M)


def _chapter(chapter: dict) -> str:
    return (BOOK / chapter["files"][0]).read_text(encoding="utf-8")


def _number(chapter: dict) -> int:
    return CHAPTERS.index(chapter) + 1


def _answers() -> dict[str, str]:
    """'N.k' -> (title, body) of each worked answer."""
    text = ANSWERS.read_text(encoding="utf-8")
    parts = re.split(r"^### Exercise (\d+\.\d+) \(([^)]+)\)\s*$", text, flags=re.M)
    return {
        parts[i]: (parts[i + 1], parts[i + 2].split("\n## ")[0]) for i in range(1, len(parts), 3)
    }


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c["id"] for c in CHAPTERS])
def test_learning_goals_come_first(chapter):
    text = _chapter(chapter)
    goals = text.find(":::{admonition} Learning goals")
    first_topic = text.find("(topic-")
    assert goals > 0, "no learning goals admonition"
    assert goals < first_topic, "the learning goals come before the first section"
    block = text[goals : text.index("\n:::", goals + 10)]
    assert len(re.findall(r"^- ", block, re.M)) >= 4, "at least four goals"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c["id"] for c in CHAPTERS])
def test_recap_exercises_and_readings_close_the_chapter(chapter):
    text = _chapter(chapter)
    heads = re.findall(r"^## (.+)$", text, re.M)
    assert heads[-3:] == ["Recap", "Exercises", "Readings"], heads[-4:]
    recap = text.split("\n## Recap\n")[1].split("\n## ")[0]
    assert len(re.findall(r"^- ", recap, re.M)) >= 4
    readings = text.split("\n## Readings\n")[1]
    items = re.findall(r"^- (\*[^*\n]+\*(?:; \*[^*\n]+\*)*): (.+)$", readings, re.M)
    assert len(items) >= 3, "readings, grouped by section (see tests/test_book_readings.py)"
    for section, ref in items:
        assert "](http" in ref or re.search(r"\*[A-Z][^*]+\*", ref), f"{section}: no link or title"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c["id"] for c in CHAPTERS])
def test_three_to_five_exercises_each_with_a_worked_answer(chapter):
    text = _chapter(chapter)
    exercises = EXERCISE.findall(text.split("\n## Exercises\n")[1].split("\n## ")[0])
    assert 3 <= len(exercises) <= 5, f"{len(exercises)} exercises"
    n = _number(chapter)
    assert [(int(a), int(b)) for a, b, _, _ in exercises] == [
        (n, k) for k in range(1, len(exercises) + 1)
    ], "exercises are numbered chapter.k in order"
    answers = _answers()
    for a, b, title, task in exercises:
        assert len(task.split()) >= 15, f"exercise {a}.{b} is too short to work on"
        assert f"{a}.{b}" in answers, f"exercise {a}.{b} has no worked answer"
        answer_title, body = answers[f"{a}.{b}"]
        assert answer_title == title, f"exercise {a}.{b}: answer is titled {answer_title!r}"
        assert len(body.split()) >= 40, f"the answer to {a}.{b} is too thin"


def test_every_answer_belongs_to_an_exercise():
    asked = set()
    for chapter in CHAPTERS:
        asked |= {f"{a}.{b}" for a, b, _, _ in EXERCISE.findall(_chapter(chapter))}
    assert set(_answers()) == asked


def test_answers_stay_out_of_the_published_book():
    config = yaml.safe_load((BOOK / "_config.yml").read_text(encoding="utf-8"))
    assert config.get("only_build_toc_files") is True, "the book builds only its toc's files"
    toc = (BOOK / "_toc.yml").read_text(encoding="utf-8")
    assert "instructor/answers" not in toc
    for chapter in CHAPTERS:
        assert "instructor/answers" not in _chapter(chapter), "no link to the answers"
