"""The book's structure: the topic map, the chapters' topic markers, decks and lab links.

book/topics.yml is the machine-readable topic map (chapter -> topics, plus the master list of
every topic of the course). These tests fail when a topic loses its chapter or its heading,
when a chapter loses its deck or its lab links, or when a deck loses the chapter's terms.
They read source files only; tests/test_site_browser.py checks the built site.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BOOK = REPO / "book"
DECKS = REPO / "slides" / "decks"
TOPICS = yaml.safe_load((BOOK / "topics.yml").read_text(encoding="utf-8"))
CHAPTERS = TOPICS["chapters"]
MASTER = TOPICS["topics"]
LABS = TOPICS["labs"]

# The course's topic table has eight parts; each is a chapter of the map.
PARTS = [
    "introduction",
    "what-is-different",
    "model-to-system",
    "pipelines",
    "designing-the-system",
    "testing-in-production",
    "teams",
    "labs-and-course",
]
MARKER = re.compile(r"^\(topic-([a-z0-9-]+)\)=\s*$")


def _toc_files() -> set[str]:
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text(encoding="utf-8"))
    files = {toc["root"]}

    def walk(entries: list) -> None:
        for entry in entries:
            if "file" in entry:
                files.add(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return files


def _markers(path: Path) -> dict[str, str]:
    """topic id -> the heading that follows its marker (empty if none follows)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        match = MARKER.match(line)
        if not match:
            continue
        following = next((x for x in lines[i + 1 :] if x.strip()), "")
        found[match.group(1)] = following if following.startswith("#") else ""
    return found


def test_every_part_of_the_course_is_a_chapter():
    assert [c["id"] for c in CHAPTERS] == PARTS


def test_master_list_is_covered_exactly_once():
    mapped = [t for c in CHAPTERS for t in c["topics"]]
    assert not sorted({t for t in mapped if mapped.count(t) > 1}), "topic in two chapters"
    unknown = sorted(set(mapped) - set(MASTER))
    assert not unknown, f"chapters map topics missing from the master list: {unknown}"
    orphans = sorted(set(MASTER) - set(mapped))
    assert not orphans, f"topics without a chapter: {orphans}"
    assert len(MASTER) >= 90, "the master list lost topics of the course table"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c["id"] for c in CHAPTERS])
def test_each_topic_has_a_heading_in_its_chapter(chapter):
    markers: dict[str, str] = {}
    for rel in chapter["files"]:
        path = BOOK / rel
        assert path.is_file(), f"{rel} is missing"
        markers.update(_markers(path))
    missing = [t for t in chapter["topics"] if t not in markers]
    assert not missing, f"{chapter['id']}: no (topic-...)= marker for {missing}"
    headless = [t for t in chapter["topics"] if not markers[t]]
    assert not headless, f"{chapter['id']}: markers not followed by a heading: {headless}"
    stray = sorted(set(markers) - set(chapter["topics"]))
    assert not stray, f"{chapter['id']}: markers for topics the map gives elsewhere: {stray}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c["id"] for c in CHAPTERS])
def test_each_topic_section_has_substance(chapter):
    """Each topic section holds some prose, not just a heading (a definition and why it matters)."""
    for rel in chapter["files"]:
        text = (BOOK / rel).read_text(encoding="utf-8")
        parts = re.split(r"^\(topic-([a-z0-9-]+)\)=\s*$", text, flags=re.M)
        for topic, body in zip(parts[1::2], parts[2::2], strict=True):
            words = len(re.findall(r"[A-Za-z]{2,}", body.split("\n(topic-")[0]))
            assert words >= 60, f"{rel}: topic {topic} has only {words} words"


def test_every_chapter_file_is_in_the_toc():
    toc = _toc_files()
    for chapter in CHAPTERS:
        for rel in chapter["files"]:
            assert rel.removesuffix(".md") in toc, f"{rel} is not in book/_toc.yml"
    for lab in LABS:
        assert f"labs/{lab}" in toc, f"lab page labs/{lab}.md is not in book/_toc.yml"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c["id"] for c in CHAPTERS])
def test_every_chapter_has_a_deck_and_links_it(chapter):
    deck = DECKS / f"{chapter['deck']}.md"
    assert deck.is_file(), f"{chapter['id']}: no deck {deck.relative_to(REPO)}"
    first = (BOOK / chapter["files"][0]).read_text(encoding="utf-8")
    assert re.search(rf"^```{{deck}} {re.escape(chapter['deck'])}\s*$", first, re.M), (
        f"{chapter['files'][0]} does not link its deck with a {{deck}} {chapter['deck']} directive"
    )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c["id"] for c in CHAPTERS])
def test_every_chapter_links_its_labs(chapter):
    assert chapter["labs"], f"{chapter['id']} names no lab that practises it"
    text = "\n".join((BOOK / rel).read_text(encoding="utf-8") for rel in chapter["files"])
    for lab in chapter["labs"]:
        assert lab in LABS, f"{chapter['id']}: unknown lab {lab}"
        assert re.search(rf"\]\((\.\./)?(labs/)?{re.escape(lab)}\.md\)", text), (
            f"{chapter['id']} does not link the lab page labs/{lab}.md"
        )


def test_every_deck_belongs_to_a_chapter():
    decks = {p.stem for p in DECKS.glob("*.md")}
    assert decks == {c["deck"] for c in CHAPTERS}


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c["id"] for c in CHAPTERS])
def test_deck_format(chapter):
    """reveal-md format: front matter, `---` slides, notes, and a link back to the chapter."""
    text = (DECKS / f"{chapter['deck']}.md").read_text(encoding="utf-8")
    assert text.startswith("---\ntitle: "), "front matter with a title first"
    body = text.split("\n---\n", 1)[1]  # after the front matter
    assert len(re.findall(r"^---$", body, re.M)) >= 4, "a deck has several slides"
    assert re.search(r"^Note:", body, re.M), "speaker notes start with `Note:`"
    page = chapter["files"][0].removesuffix(".md")
    assert f"../{page}.html" in body, f"the deck links back to its chapter ../{page}.html"


@pytest.mark.parametrize("chapter", CHAPTERS[:-1], ids=[c["id"] for c in CHAPTERS[:-1]])
def test_deck_agrees_with_its_chapter(chapter):
    """The deck has a slide for each of its chapter's topics (marked `<!-- topic: id -->`)."""
    text = (DECKS / f"{chapter['deck']}.md").read_text(encoding="utf-8")
    marked = set(re.findall(r"<!-- topic: ([a-z0-9-]+) -->", text))
    missing = [t for t in chapter["topics"] if t not in marked]
    assert not missing, f"deck {chapter['deck']} has no slide for {missing}"
    assert marked <= set(chapter["topics"]), "deck marks topics of another chapter"


def test_some_decks_draw_mermaid_diagrams():
    drawn = [p.stem for p in DECKS.glob("*.md") if "```mermaid" in p.read_text(encoding="utf-8")]
    assert len(drawn) >= 4, drawn


@pytest.mark.parametrize("lab", LABS)
def test_lab_pages_link_their_folder(lab):
    text = (BOOK / "labs" / f"{lab}.md").read_text(encoding="utf-8")
    assert re.search(rf"^```{{lab-folder}} {re.escape(lab)}\s*$", text, re.M)
    for word in ("Roles", "Checks"):
        assert re.search(rf"^#+ .*{word}", text, re.M), f"labs/{lab}.md has no {word} section"


def test_no_cdn_in_the_sources():
    """Nothing may be fetched at view time: no math (MathJax comes from a CDN), no remote assets."""
    for path in list(BOOK.rglob("*.md")) + list(DECKS.glob("*.md")):
        if "_build" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        assert "{math}" not in text and "$$" not in text, f"{path}: math needs MathJax from a CDN"
        assert not re.search(r"<(script|img|link)[^>]+(src|href)=\"https?:", text), path
