"""Lab pages: they link the chapter sections they practise and agree with the lab READMEs on roles.

The course uses the same four roles in every lab (the teams chapter says so); each lab page
lists them, and a lab whose folder exists must name the same roles in its README, the brief
the team actually reads.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BOOK = REPO / "book"
TOPICS = yaml.safe_load((BOOK / "topics.yml").read_text(encoding="utf-8"))
LABS = TOPICS["labs"]
CHAPTER_OF = {t: c["id"] for c in TOPICS["chapters"] for t in c["topics"]}
ROLES = {
    "Data scientist": "data scientist",
    "Software engineer": "software engineer",
    "Operator": "operator",
    "Domain person": "domain",
}


def _page(lab: str) -> str:
    return (BOOK / "labs" / f"{lab}.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("lab", LABS)
def test_lab_page_links_the_sections_it_practises(lab):
    text = _page(lab)
    line = re.search(r"^\*\*Sections it practises:\*\* (.+)$", text, re.M)
    assert line, f"labs/{lab}.md does not list the chapter sections it practises"
    topics = re.findall(r"\{ref\}`topic-([a-z0-9-]+)`", line.group(1))
    assert len(topics) >= 4, topics
    unknown = [t for t in topics if t not in CHAPTER_OF]
    assert not unknown, f"no such topic: {unknown}"
    practises = re.search(r"^\*\*Practises:\*\* (.+)$", text, re.M).group(1)
    for topic in topics:
        chapter = CHAPTER_OF[topic]
        assert f"../chapters/{chapter}.md" in practises, (
            f"labs/{lab}.md practises {topic} but does not list its chapter {chapter}"
        )


@pytest.mark.parametrize("lab", LABS)
def test_lab_page_lists_the_four_course_roles(lab):
    roles = re.findall(
        r"^- \*\*([^*]+)\*\*", _page(lab).split("\n## Roles\n")[1].split("\n## ")[0], re.M
    )
    named = {next((r for r in ROLES if role.startswith(r)), role) for role in roles}
    assert named == set(ROLES), f"labs/{lab}.md roles: {roles}"


@pytest.mark.parametrize(
    "lab", [lab for lab in LABS if (REPO / "labs" / lab / "README.md").is_file()]
)
def test_lab_readme_names_the_same_roles(lab):
    readme = (REPO / "labs" / lab / "README.md").read_text(encoding="utf-8").lower()
    missing = [key for key in ROLES.values() if key not in readme]
    assert not missing, f"labs/{lab}/README.md does not name the roles {missing}"


@pytest.mark.parametrize("lab", LABS)
def test_lab_page_says_planned_exactly_while_the_lab_has_no_folder(lab):
    text = _page(lab)
    planned = not (REPO / "labs" / lab / "README.md").is_file()
    for section in ("## Deliverables and submission", "## Checks"):
        body = text.split(section)[1].split("\n## ")[0].lower()
        assert ("planned" in body) == planned, (
            f"labs/{lab}.md {section}: the lab is {'planned' if planned else 'there'}; say so"
        )
