"""Sphinx extension for the shipml book: links to the slide decks and to the lab folders.

Directives (MyST: ```` ```{deck} introduction ```` and ```` ```{lab-folder} serving ````):

- ``deck NAME`` links a chapter to its reveal.js deck, built by ``autograder.site`` into
  ``<site>/slides/NAME.html``. The deck source ``slides/decks/NAME.md`` must exist, or the
  build warns (and ``-W`` makes that an error).
- ``lab-folder NAME`` links a lab page to its lab folder. When ``labs/NAME/README.md`` exists,
  the link points at ``<site>/labs/NAME/README.html``, which this extension writes at the end
  of the HTML build (the README rendered, plus the lab's public files: ``lab.toml`` and
  ``starter/``). When the folder has not landed yet, the page says the lab is planned and
  shows no link, so the built site never holds a broken link.

Lab pages depend on their README, so a README that appears or changes re-renders its page.
"""

from __future__ import annotations

import html
import posixpath
import re
import shutil
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

BOOK_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BOOK_DIR.parent
DECKS_DIR = REPO_DIR / "slides" / "decks"
LABS_DIR = REPO_DIR / "labs"

# What of a lab folder the site publishes. Solutions, nbgrader source notebooks (they hold
# the solutions), mutants and hidden data stay out.
PUBLIC_TOP_FILES = ("README.md", "lab.toml")
PUBLIC_DIRS = ("starter",)
SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", "node_modules", ".venv"}
MAX_FILE_BYTES = 2_000_000


def _site_prefix(docname: str) -> str:
    """The relative path from a page to the site root (pages are ``docname.html``)."""
    return "../" * docname.count("/")


class DeckDirective(SphinxDirective):
    """Link to the chapter's slide deck."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0].strip()
        source = DECKS_DIR / f"{name}.md"
        self.env.note_dependency(str(source))
        if not source.is_file():
            logger.warning(
                "deck %r has no source: expected %s", name, source, location=self.get_location()
            )
        href = f"{_site_prefix(self.env.docname)}slides/{name}.html"
        para = nodes.paragraph(classes=["shipml-deck"])
        para += nodes.strong(text="Slides: ")
        para += nodes.reference(
            "", f"the deck for this chapter ({name})", refuri=href, classes=["shipml-deck-link"]
        )
        para += nodes.Text(" (press S in the deck for the speaker notes).")
        return [para]


class LabFolderDirective(SphinxDirective):
    """Link to a lab's folder, or say that the lab is planned."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0].strip()
        readme = LABS_DIR / name / "README.md"
        self.env.note_dependency(str(readme))
        labs = getattr(self.env, "shipml_labs", set())
        labs.add(name)
        self.env.shipml_labs = labs
        para = nodes.paragraph(classes=["shipml-lab-folder"])
        if readme.is_file():
            href = f"{_site_prefix(self.env.docname)}labs/{name}/README.html"
            para += nodes.strong(text="Lab folder: ")
            para += nodes.reference(
                "", f"labs/{name}/", refuri=href, classes=["shipml-lab-folder-link"]
            )
            para += nodes.Text(" (the team's brief, the starter and the public checks).")
            return [para]
        note = nodes.admonition(classes=["shipml-lab-planned", "note"])
        note += nodes.title(text="Planned lab")
        note += nodes.paragraph(
            text=(
                f"The folder labs/{name}/ has not landed in this version of the kit yet. "
                "This page describes what the lab will ask; its brief, starter and checks "
                "will be linked here when the folder exists."
            )
        )
        return [note]


class LabChecksDirective(SphinxDirective):
    """A table of a lab's public checks, read from ``labs/NAME/lab.toml`` (the grader's own list)."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0].strip()
        path = LABS_DIR / name / "lab.toml"
        self.env.note_dependency(str(path))
        if not path.is_file():
            text = [
                f"The checks will be listed here from `labs/{name}/lab.toml` when the lab lands.",
            ]
        else:
            # The autograder's own reader: the book shows exactly what the grader validates.
            from autograder.engine.spec import load_lab
            from autograder.errors import ShipmlError
            from autograder.mltestscore import TESTS

            try:
                checks = load_lab(path).checks
            except ShipmlError as exc:
                logger.warning("cannot read %s: %s", path, exc, location=self.get_location())
                checks = []
            public = [c for c in checks if c.visibility == "public"]
            hidden = [c for c in checks if c.visibility == "hidden"]
            text = [
                "| check | points | ML Test Score | what it checks |",
                "| --- | --- | --- | --- |",
            ]
            for check in public:
                test = check.ml_test_score
                label = f"{test}: {TESTS[test]}" if test in TESTS else test
                desc = check.description.replace("|", "\\|")
                text.append(f"| `{check.id}` | {check.points:g} | {label} | {desc} |")
            total = sum(c.points for c in checks)
            hidden_points = sum(c.points for c in hidden)
            text += [
                "",
                f"Public checks: {len(public)}. Hidden checks, run only at grading (for example on "
                f"the held-out months): {len(hidden)}, worth {hidden_points:g} of {total:g} points. "
                f"Source: `labs/{name}/lab.toml`.",
            ]
        container = nodes.container(classes=["shipml-lab-checks"])
        self.state.nested_parse(StringList(text, source=str(path)), self.content_offset, container)
        return [container]


def _merge_labs(app: Sphinx, env: object, docnames: set[str], other: object) -> None:
    labs = getattr(env, "shipml_labs", set())
    labs |= getattr(other, "shipml_labs", set())
    env.shipml_labs = labs


# -- publishing the lab folders -------------------------------------------------------------


def _public_files(lab: Path) -> list[str]:
    """Relative POSIX paths of the files of a lab folder that the site publishes."""
    found: list[str] = []
    for name in PUBLIC_TOP_FILES:
        if (lab / name).is_file():
            found.append(name)
    for top in PUBLIC_DIRS:
        root = lab / top
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(lab)
            if any(part in SKIP_PARTS or part.startswith(".") for part in rel.parts):
                continue
            if path.is_file() and path.stat().st_size <= MAX_FILE_BYTES:
                found.append(rel.as_posix())
    return found


def _dirs_of(files: list[str]) -> set[str]:
    dirs = {""}
    for rel in files:
        parent = posixpath.dirname(rel)
        while parent:
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    return dirs


def _page(title: str, body: str, root: str, book_page: str, lab: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" href="{root}_static/favicon.svg" type="image/svg+xml">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.55; color: #222; }}
pre {{ background: #f5f5f5; padding: .8rem; overflow-x: auto; }}
code {{ background: #f5f5f5; padding: 0 .2rem; }}
table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #ccc; padding: .25rem .5rem; }}
nav.shipml-crumbs {{ font-size: .9rem; border-bottom: 1px solid #ddd; padding-bottom: .5rem; }}
.shipml-unpublished {{ border-bottom: 1px dotted #999; }}
</style></head>
<body class="shipml-lab-folder-page">
<nav class="shipml-crumbs"><a href="{root}index.html">shipml book</a> /
<a href="{book_page}">lab: {html.escape(lab)}</a> /
<a href="{root}labs/{lab}/index.html">labs/{html.escape(lab)}/</a></nav>
<main>
{body}
</main>
</body></html>
"""


def _render_markdown(text: str, rel: str, public: set[str], dirs: set[str]) -> str:
    """Render a lab's Markdown file; relative links go to published files or become text."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")
    here = posixpath.dirname(rel)

    def resolve(href: str) -> str | None:
        if not href or href.startswith(("#", "mailto:")) or "://" in href:
            return href
        path, _, frag = href.partition("#")
        target = posixpath.normpath(posixpath.join(here, path))
        if target.startswith("../../book/") and target.endswith(".md"):
            # A link from a lab (labs/<name>/ in the repository and on the site) into the book,
            # which is the site's root: the book's page of that file.
            out = posixpath.relpath("../../" + target[len("../../book/"):-3] + ".html", here or ".")
            return out + (f"#{frag}" if frag else "")
        if target.startswith("../") or target == "..":
            return None
        if target == ".":
            target = ""
        if target in dirs:
            out = posixpath.join(target, "index.html") if target else "index.html"
        elif target in public:
            out = target[:-3] + ".html" if target.endswith(".md") else target
        else:
            return None
        out = posixpath.relpath(out, here or ".")
        return out + (f"#{frag}" if frag else "")

    # add_render_rule binds each rule to the renderer: the first argument is the renderer.
    def link_open(_renderer: object, tokens: list, idx: int, options: dict, env: dict) -> str:
        token = tokens[idx]
        href = resolve(token.attrGet("href") or "")
        if href is None:
            token.meta["unpublished"] = True
            original = html.escape(token.attrGet("href") or "")
            return (
                f'<span class="shipml-unpublished" title="{original}: in the repository, '
                'not published on the site">'
            )
        token.attrSet("href", href)
        return md.renderer.renderToken(tokens, idx, options, env)

    def link_close(_renderer: object, tokens: list, idx: int, options: dict, env: dict) -> str:
        # Find the matching link_open (links do not nest).
        for j in range(idx - 1, -1, -1):
            if tokens[j].type == "link_open":
                if tokens[j].meta.get("unpublished"):
                    return "</span>"
                break
        return md.renderer.renderToken(tokens, idx, options, env)

    def image(_renderer: object, tokens: list, idx: int, options: dict, env: dict) -> str:
        token = tokens[idx]
        src = resolve(token.attrGet("src") or "")
        if src is None:
            return f"<em>[image: {html.escape(token.content)}]</em>"
        token.attrSet("src", src)
        return md.renderer.image(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    md.add_render_rule("link_close", link_close)
    md.add_render_rule("image", image)
    return md.render(text)


def publish_lab(lab_dir: Path, outdir: Path) -> list[str]:
    """Write a lab's public files into ``outdir/labs/<name>/``; return the pages written."""
    name = lab_dir.name
    target = outdir / "labs" / name
    if target.exists():
        shutil.rmtree(target)
    files = _public_files(lab_dir)
    public = set(files)
    dirs = _dirs_of(files)
    written: list[str] = []
    for rel in files:
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lab_dir / rel, dest)
        if rel.endswith(".md"):
            depth = rel.count("/") + 2  # labs/<name>/...
            root = "../" * depth
            book_page = "../" * (rel.count("/") + 1) + f"{name}.html"
            text = (lab_dir / rel).read_text(encoding="utf-8")
            body = _render_markdown(text, rel, public, dirs)
            page = dest.with_suffix(".html")
            page.write_text(_page(f"labs/{name}/{rel}", body, root, book_page, name), "utf-8")
            written.append(page.relative_to(outdir).as_posix())
    for d in sorted(dirs):
        depth = (d.count("/") + 1 if d else 0) + 2
        root = "../" * depth
        book_page = "../" * ((d.count("/") + 1 if d else 0) + 1) + f"{name}.html"
        entries = []
        children = sorted(
            {
                rel[len(d) + 1 if d else 0 :].split("/", 1)[0]
                for rel in files
                if (rel.startswith(d + "/") if d else True)
            }
        )
        for child in children:
            full = posixpath.join(d, child) if d else child
            if full in dirs:
                entries.append(f'<li><a href="{child}/index.html">{html.escape(child)}/</a></li>')
            else:
                label = html.escape(child)
                extra = ""
                if child.endswith(".md"):
                    extra = f' (<a href="{child[:-3]}.html">rendered</a>)'
                entries.append(f'<li><a href="{child}">{label}</a>{extra}</li>')
        title = f"labs/{name}/{d + '/' if d else ''}"
        body = (
            f"<h1>{html.escape(title)}</h1>\n<p>The public part of the lab folder: the brief, "
            "the checks and the starter. The reference solution and the grader's mutants stay "
            "in the repository.</p>\n<ul>\n" + "\n".join(entries) + "\n</ul>"
        )
        page = target / d / "index.html" if d else target / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(_page(title, body, root, book_page, name), "utf-8")
        written.append(page.relative_to(outdir).as_posix())
    return written


def _publish_labs(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    for name in sorted(getattr(app.env, "shipml_labs", set())):
        lab_dir = LABS_DIR / name
        if (lab_dir / "README.md").is_file():
            pages = publish_lab(lab_dir, outdir)
            logger.info("shipml: published labs/%s/ (%d pages)", name, len(pages))


FIGURE_TAG = "deck-figure-"
FIGURES_DIR = "figures"
DECK_FIGURE = re.compile(r"\.\./figures/([a-z0-9-]+)\.png")


def _export_figures(app: Sphinx, exception: Exception | None) -> None:
    """Copy the plots of code cells tagged ``deck-figure-NAME`` to ``<site>/figures/NAME.png``.

    The decks show the executed book's own plots (``../figures/NAME.png`` from a deck), so a
    slide can never drift from its chapter. A deck that shows a figure no cell provides is a
    build warning (an error under ``-W``).
    """
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    images = outdir / app.builder.imagedir
    found: dict[str, Path] = {}
    for docname in sorted(app.env.all_docs):
        doctree = app.env.get_doctree(docname)
        for node in doctree.findall(nodes.Element):
            names = [
                c.removeprefix("tag_" + FIGURE_TAG)
                for c in node.get("classes", [])
                if c.startswith("tag_" + FIGURE_TAG)
            ]
            if not names:
                continue
            image = next(iter(node.findall(nodes.image)), None)
            uri = image["uri"] if image is not None else ""
            built = images / (app.builder.images.get(uri) or Path(uri).name) if uri else None
            if built is None or not built.is_file():
                logger.warning("cell tagged %s%s in %s has no plot", FIGURE_TAG, names[0], docname)
                continue
            found[names[0]] = built
    target = outdir / FIGURES_DIR
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name, source in sorted(found.items()):
        shutil.copyfile(source, target / f"{name}.png")
    for deck in sorted(DECKS_DIR.glob("*.md")):
        for name in DECK_FIGURE.findall(deck.read_text(encoding="utf-8")):
            if name not in found:
                logger.warning(
                    "deck %s shows ../figures/%s.png, but no book cell is tagged %s%s",
                    deck.name, name, FIGURE_TAG, name,
                )
    logger.info("shipml: exported %d figures for the decks", len(found))


def _dedupe_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object
) -> None:
    """Drop repeated script tags: sphinx-thebe registers its inline config twice on incremental
    builds, and a repeated ``const`` declaration is a JavaScript error on every page."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        key = (
            str(getattr(script, "filename", script) or ""),  # None and "" both mean inline
            str(getattr(script, "attributes", {}).get("body", "")),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: later handlers append to the same list


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("deck", DeckDirective)
    app.add_directive("lab-folder", LabFolderDirective)
    app.add_directive("lab-checks", LabChecksDirective)
    app.connect("env-merge-info", _merge_labs)
    app.connect("build-finished", _publish_labs)
    app.connect("build-finished", _export_figures)
    # Early: some theme handlers return a template name, which stops the event.
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
