"""The book's corrected errors stay corrected (issue 12), and it promises only labs that exist.

The numbers of the book are recomputed in tests/test_book_numbers.py. These tests guard the
corrections that are not numbers: a drawing's arrows, a citation's years, a time-zone
conversion, an interval method, and the rule that a chapter may describe the autograder's
behaviour in a lab only once that lab exists (until then it says "planned").
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BOOK = REPO / "book"
DECKS = REPO / "slides" / "decks"
CODE_CELL = re.compile(r"^```\{code-cell\}.*?^```\s*$", re.M | re.S)
LABS = yaml.safe_load((BOOK / "topics.yml").read_text(encoding="utf-8"))["labs"]
CHAPTER_FILES = sorted((BOOK / "chapters").glob("*.md"))


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _section(text: str, topic: str) -> str:
    """The text from a topic's marker to the next marker."""
    start = text.index(f"(topic-{topic})=")
    nxt = text.find("(topic-", start + 10)
    return text[start : nxt if nxt > 0 else len(text)]


def _slide(deck: str, topic: str) -> str:
    text = _read(DECKS / f"{deck}.md")
    start = text.index(f"<!-- topic: {topic} -->")
    end = text.find("\n---\n", start)
    return text[start : end if end > 0 else len(text)]


# CRISP-DM as Chapman et al. (2000) draw it; the two-way arrows listed both ways.
CRISP_DM = {
    ("business understanding", "data understanding"),
    ("data understanding", "business understanding"),
    ("data understanding", "data preparation"),
    ("data preparation", "modeling"),
    ("modeling", "data preparation"),
    ("modeling", "evaluation"),
    ("evaluation", "business understanding"),
    ("evaluation", "deployment"),
}


def test_crisp_dm_drawing_in_the_book_has_the_cycle_of_the_guide():
    cells = CODE_CELL.findall(_section(_read(BOOK / "chapters/model-to-system.md"), "crisp-dm"))
    literal = next((re.search(r"CRISP_DM = (\[.*?\n\])", c, re.S) for c in cells), None)
    assert literal, "the CRISP-DM figure is drawn from a `CRISP_DM = [...]` list of arrows"
    arrows = set()
    for a, b, both in ast.literal_eval(literal.group(1)):
        arrows.add((a, b))
        if both:
            arrows.add((b, a))
    assert arrows == CRISP_DM, sorted(arrows ^ CRISP_DM)


def test_crisp_dm_diagram_in_the_deck_has_the_cycle_of_the_guide():
    slide = _slide("model-to-system", "crisp-dm")
    mermaid = re.search(r"```mermaid\n(.*?)```", slide, re.S)
    assert mermaid, "the CRISP-DM slide draws a mermaid diagram"
    names = dict(re.findall(r"(\w+)\[([^\]]+)\]", mermaid.group(1)))
    arrows = set()
    for line in mermaid.group(1).splitlines():
        parts = re.split(r"\s*(<-->|-->)\s*", line.strip())
        for i in range(1, len(parts) - 1, 2):
            a = names.get(re.match(r"\w+", parts[i - 1]).group(0))
            b = names.get(re.match(r"\w+", parts[i + 1]).group(0))
            arrows.add((a, b))
            if parts[i] == "<-->":
                arrows.add((b, a))
    assert arrows == CRISP_DM, sorted(arrows ^ CRISP_DM)


@pytest.mark.parametrize(
    "text",
    [
        _section(_read(BOOK / "chapters/what-is-different.md"), "all-models-wrong"),
        _slide("what-is-different", "all-models-wrong"),
    ],
    ids=["chapter", "deck"],
)
def test_box_quote_is_dated_right(text):
    """'All models are wrong' is from 1976; '... but some are useful' from 1979 (and 1987)."""
    assert "1976" in text and "Science and Statistics" in text
    assert "1979" in text and "Robustness in the Strategy of Scientific Model Building" in text
    assert "1987" in text
    useful = text.index("some are useful", text.index("1976") if "1976" in text else 0)
    assert "1979" in text[max(0, useful - 200) : useful + 200], "'some are useful' is cited to 1979"


def test_label_wait_converts_to_new_york_time_before_flooring():
    section = _section(_read(BOOK / "chapters/testing-in-production.md"), "telemetry-limits")
    cell = "\n".join(CODE_CELL.findall(section))
    assert 'tz_convert("America/New_York")' in cell
    assert not re.search(r'time_hour"\]\.dt\.floor\("D"\)', cell), "UTC time_hour floored as local"
    assert "normalize()" in cell or "floor(" in cell


def test_canary_interval_is_wilson_not_wald():
    section = _section(_read(BOOK / "chapters/testing-in-production.md"), "canary-releases")
    cell = "\n".join(CODE_CELL.findall(section))
    assert 'method="wilson"' in cell
    assert "1.96" not in cell
    assert "Wilson" in _slide("testing-in-production", "canary-releases")


def test_feature_interactions_teaches_both_meanings():
    section = _section(_read(BOOK / "chapters/what-is-different.md"), "feature-interactions")
    for word in (
        "call forwarding",
        "call screening",
        "guardian",
        "lane",
        "nonlocal",
        "nonmonotonic",
        "statistic",
    ):
        assert word in section, word
    assert "neither nonlocal nor nonmonotonic" in section
    slide = _slide("what-is-different", "feature-interactions")
    assert "software" in slide and "statistics" in slide


def test_smaller_errata_stay_fixed():
    m2s = _read(BOOK / "chapters/model-to-system.md")
    assert "rules 4 and 5" not in m2s and "rule 4" in m2s
    assert "study the choice below" not in m2s
    teams = _read(BOOK / "chapters/teams.md")
    assert "the model has a version and a\nmodel card" not in teams
    if "model card" in teams.lower():
        assert "not yet part of the kit" in teams, "the kit has no model card: say so"
    what = _read(BOOK / "chapters/what-is-different.md")
    assert "one request\nin five" not in what and "one request in five" not in what
    tip = _read(BOOK / "chapters/testing-in-production.md")
    assert "lie almost\nentirely above" not in tip and "lie almost entirely above" not in tip


def test_feature_availability_section_exists_and_is_honest():
    m2s = _read(BOOK / "chapters/model-to-system.md")
    section = _section(m2s, "feature-availability")
    assert "forecast" in section and "merge_asof" in section and "forward chaining" in section
    datasheet = _read(REPO / "datasets" / "flights" / "README.md")
    assert "which a traveller's app also knows in\nadvance" not in datasheet
    assert "known only in that hour" in datasheet


# ---------------------------------------------------------------- no promises for planned labs
LAB_NAMES = {
    "pipeline": r"pipeline lab",
    "container": r"container(?: and deploy)? lab",
    "monitoring": r"monitoring lab",
    "mistakes": r"living-with-mistakes lab",
    "serving": r"serving lab",
    "beyond-accuracy": r"beyond-accuracy lab",
}
PROMISE = re.compile(
    r"\b(autograder|harness|checks?|replays?|floods?|corrupts?|measures?|runs?|trains?)\b", re.I
)


def _sentences(path: Path) -> list[str]:
    text = CODE_CELL.sub("", _read(path))
    text = re.sub(r"\s+", " ", text)
    return re.split(r"(?<=[.!?])\s+(?=[A-Z(\[*])", text)


def _planned(lab: str) -> bool:
    return not (REPO / "labs" / lab / "README.md").is_file()


@pytest.mark.parametrize("path", CHAPTER_FILES, ids=[p.stem for p in CHAPTER_FILES])
def test_chapters_say_planned_for_labs_that_do_not_exist(path):
    offending = []
    for sentence in _sentences(path):
        for lab in LABS:
            if not _planned(lab):
                continue
            named = re.search(LAB_NAMES.get(lab, lab), sentence, re.I) or (
                f"labs/{lab}.md" in sentence
            )
            if named and PROMISE.search(sentence) and "planned" not in sentence.lower():
                offending.append(f"[{lab}] {sentence[:160]}")
    assert not offending, "describe planned labs as planned:\n" + "\n".join(offending)


@pytest.mark.parametrize("path", CHAPTER_FILES, ids=[p.stem for p in CHAPTER_FILES])
def test_chapters_do_not_call_existing_labs_planned(path):
    text = re.sub(r"\s+", " ", _read(path))
    stale = [
        lab
        for lab in LABS
        if not _planned(lab)
        and re.search(
            rf"planned \[[^\]]*\]\(\.\./labs/{lab}\.md\)|\]\(\.\./labs/{lab}\.md\) \(planned\)",
            text,
        )
    ]
    assert not stale, f"these labs exist now; drop 'planned' next to them: {stale}"


# The source lecture's own cases and arguments, each restored in the book's words with a citation:
# (chapter, topic section, phrases the section must hold, a link it must cite).
SEED_CASES = [
    (
        "what-is-different",
        "missing-specifications",
        ["compute_deductions", "transcribe", "has_cancer", "contract"],
        "github.com/ckaestne/seai",
    ),
    (
        "what-is-different",
        "weak-spec-engineering",
        ["requirements engineering", "validation"],
        "machine-learning-is-requirements-engineering",
    ),
    ("what-is-different", "feature-interactions", ["lane-keeping", "guardian"], "doi.org"),
    ("what-is-different", "feature-interactions", ["call forwarding", "screening"], "doi.org"),
    ("what-is-different", "feedback-loops", ["recommend", "flat"], "10.1145/3306618.3314288"),
    (
        "designing-the-system",
        "right-system",
        ["radiologists", "what the system sees", "calibrated", "limits"],
        "github.com/ckaestne/seai",
    ),
    (
        "designing-the-system",
        "living-with-mistakes",
        ["toaster", "kitchen"],
        "github.com/ckaestne/seai",
    ),
    (
        "designing-the-system",
        "model-vs-system-goals",
        ["sales", "community", "keeping customers", "engagement"],
        "",
    ),
    ("introduction", "it-depends", ["Mary Shaw", "cost-effective"], "SEprinciples"),
    ("teams", "unicorn", ["Orban"], "slideshare.net/ryanorban"),
    ("teams", "t-shaped", ["Yip"], "why-t-shaped-people"),
    ("teams", "model-first-system-first", ["process"], "on-the-process-for-building-software"),
]


@pytest.mark.parametrize("case", SEED_CASES, ids=[f"{c[0]}:{c[1]}:{c[2][0]}" for c in SEED_CASES])
def test_seed_case_is_taught_with_a_citation(case):
    chapter, topic, phrases, link = case
    section = re.sub(r"\s+", " ", _section(_read(BOOK / "chapters" / f"{chapter}.md"), topic))
    missing = [p for p in phrases if p.lower() not in section.lower()]
    assert not missing, f"{chapter} / {topic} lacks {missing}"
    assert link in section, f"{chapter} / {topic} does not cite {link}"
