"""The lab READMEs and the book's lab pages agree: each README links every book section its lab
page says the lab practises (by the section's own heading, in its chapter's file), and uses the
book's role names."""

from __future__ import annotations

import re

import pytest

from autograder.paths import BOOK_DIR, LABS_DIR

LABS = sorted(p.parent.name for p in LABS_DIR.glob("*/lab.toml"))


def sections() -> dict[str, tuple[str, str]]:
    """topic id -> (chapter file name, heading text), from the chapters' MyST targets."""
    found = {}
    for chapter in sorted((BOOK_DIR / "chapters").glob("*.md")):
        lines = chapter.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            match = re.match(r"\(topic-([a-z0-9-]+)\)=", line)
            if match:
                heading = next(text for text in lines[i + 1:] if text.startswith("#"))
                found[match.group(1)] = (chapter.name, heading.lstrip("#").strip())
    return found


@pytest.mark.parametrize("lab", LABS)
def test_lab_readme_links_every_section_its_lab_page_lists(lab):
    page = (BOOK_DIR / "labs" / f"{lab}.md").read_text(encoding="utf-8")
    listed = re.findall(r"\{ref\}`topic-([a-z0-9-]+)`", page.split("**Sections it practises:**")[1].splitlines()[0])
    assert listed, f"book/labs/{lab}.md lists no section"
    readme = (LABS_DIR / lab / "README.md").read_text(encoding="utf-8")
    where = sections()
    for topic in listed:
        chapter, heading = where[topic]
        assert f"[{heading}](../../book/chapters/{chapter})" in readme, f"labs/{lab}/README.md does not link '{heading}' ({chapter})"
    for link in re.findall(r"\]\((\.\./\.\./book/chapters/[a-z-]+\.md)\)", readme):
        assert (LABS_DIR / lab / link).resolve().is_file(), link


@pytest.mark.parametrize("lab", LABS)
def test_lab_readme_uses_the_books_role_name_for_the_domain_person(lab):
    readme = (LABS_DIR / lab / "README.md").read_text(encoding="utf-8").lower()
    assert "domain person (the traveller)" in readme
    assert "domain expert" not in readme
