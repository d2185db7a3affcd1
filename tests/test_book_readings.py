"""Readings per section (issue 12): every content section of a chapter names at least one reading.

A chapter's content sections are its `## ` headings other than Recap, Exercises and Readings
(`###` subsections are covered by their parent). The chapter's "## Readings" list is a list of
one-line bullets, each led by the sections it serves, every section name in its own emphasis:

    - *Canary releases*; *A/B tests*: Author, ["Title"](https://...), venue year. What it adds.

A section counts as covered only when a bullet names it exactly: same text after normalising
curly quotes and stray emphasis marks, case and punctuation kept. A bullet naming a section
that does not exist (a renamed or deleted heading) fails too, and every bullet links its source.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BOOK = REPO / "book"
TOPICS = yaml.safe_load((BOOK / "topics.yml").read_text(encoding="utf-8"))
CHAPTERS = [c for c in TOPICS["chapters"] if c["files"][0].startswith("chapters/")]
CLOSING = ("Recap", "Exercises", "Readings")
BULLET = re.compile(r"^- (?P<lead>\*[^*\n]+\*(?:; \*[^*\n]+\*)*): (?P<ref>\S.*)$")
NAME = re.compile(r"\*([^*\n]+)\*")
QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


def normalise(name: str) -> str:
    """Heading text as a bullet must name it: straight quotes, no emphasis marks, one space."""
    name = name.translate(QUOTES)
    name = re.sub(r"[*_`]", "", name)
    return " ".join(name.split())


def headings(text: str, level: int) -> list[str]:
    """The chapter's headings of exactly this level, outside fenced code (code cells)."""
    found, fence = [], None
    marker = "#" * level + " "
    for line in text.splitlines():
        stripped = line.lstrip()
        opener = re.match(r"(`{3,}|~{3,})", stripped)
        if opener:
            if fence is None:
                fence = opener.group(1)
            elif stripped.startswith(fence) and not stripped[len(fence) :].strip():
                fence = None
            continue
        if fence is None and line.startswith(marker):
            found.append(normalise(line[len(marker) :]))
    return found


def content_sections(text: str) -> list[str]:
    return [h for h in headings(text, 2) if h not in CLOSING]


def readings_block(text: str) -> list[str]:
    """The lines of the chapter's Readings section, up to the next heading or the end."""
    _, found, rest = text.partition("\n## Readings\n")
    assert found, "the chapter has no '## Readings' section"
    block = re.split(r"^#{1,2} ", rest, maxsplit=1, flags=re.M)[0]
    return [line for line in block.splitlines() if line.strip()]


def parse_readings(text: str) -> list[tuple[list[str], str]]:
    """(sections named, reference) for each bullet; a line that is not a well-formed bullet fails."""
    items = []
    for line in readings_block(text):
        match = BULLET.match(line)
        assert match, (
            "each line of Readings is one bullet '- *Section*; *Section*: reference', "
            f"not {line[:80]!r}"
        )
        items.append(([normalise(n) for n in NAME.findall(match["lead"])], match["ref"]))
    return items


def coverage(text: str) -> tuple[list[str], list[str]]:
    """(content sections no bullet names, names that are no heading of the chapter)."""
    named = {name for names, _ in parse_readings(text) for name in names}
    sections = content_sections(text)
    existing = set(sections) | set(headings(text, 3))
    return [s for s in sections if s not in named], sorted(named - existing)


def _chapter(chapter: dict) -> str:
    return (BOOK / chapter["files"][0]).read_text(encoding="utf-8")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c["id"] for c in CHAPTERS])
def test_every_content_section_has_a_reading(chapter):
    text = _chapter(chapter)
    assert len(content_sections(text)) >= 5, "the chapter's sections were found"
    missing, _ = coverage(text)
    assert not missing, f"sections without a reading: {missing}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c["id"] for c in CHAPTERS])
def test_readings_name_only_sections_that_exist(chapter):
    _, unknown = coverage(_chapter(chapter))
    assert not unknown, f"readings name sections the chapter does not have: {unknown}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c["id"] for c in CHAPTERS])
def test_every_reading_links_its_source(chapter):
    items = parse_readings(_chapter(chapter))
    assert items, "the chapter lists readings"
    for names, ref in items:
        assert re.search(r"\]\(https?://[^)\s]+\)", ref), f"{names}: no link to the source"


SAMPLE = """# A chapter

## Canary releases

```{code-cell} ipython3
## not a heading: a comment in a code cell
```

## A/B tests

### A subsection

## “Quoted” heading

## Recap

## Readings

- *Canary*: Someone, ["A title"](https://example.org/a), 2020.
- *A/B tests*; *A subsection*: Someone, ["Another"](https://example.org/b), 2021.
- *"Quoted" heading*: Someone, ["Third"](https://example.org/c), 2022.
"""


def test_matching_is_exact_not_by_substring():
    """'Canary' does not cover 'Canary releases', and it is reported as a section that is not there."""
    assert content_sections(SAMPLE) == ["Canary releases", "A/B tests", '"Quoted" heading']
    missing, unknown = coverage(SAMPLE)
    assert missing == ["Canary releases"]
    assert unknown == ["Canary"]


def test_a_renamed_section_loses_its_reading():
    renamed = SAMPLE.replace("## A/B tests", "## Online experiments")
    missing, unknown = coverage(renamed)
    assert "Online experiments" in missing
    assert "A/B tests" in unknown


def test_a_bullet_without_its_section_lead_fails():
    broken = SAMPLE.replace("- *Canary*: Someone", "- Someone")
    with pytest.raises(AssertionError, match="one bullet"):
        parse_readings(broken)
