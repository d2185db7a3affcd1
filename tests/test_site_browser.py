"""The built site (book + slides) in a real headless browser.

Builds the site once per session with autograder.site, serves it from a loopback HTTP server
and drives Debian's Chromium through Playwright: the home page renders, every internal link of
every page resolves, every chapter reaches its deck, every lab page reaches its lab folder, the
decks render every slide of their source with speaker notes, their figures (the executed
book's own plots) load, mermaid diagrams become SVG, and nothing is fetched from outside the
site.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml

from autograder.site import build_site

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
TOPICS = yaml.safe_load((REPO / "book" / "topics.yml").read_text(encoding="utf-8"))
CHAPTERS = TOPICS["chapters"]
LABS = TOPICS["labs"]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
TIMEOUT_MS = 20_000


class _Links(HTMLParser):
    """Collects the URLs a page links to or loads."""

    ATTRS = {"a": "href", "link": "href", "img": "src", "script": "src", "iframe": "src"}

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = self.ATTRS.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.links.append((tag, value.strip()))


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_site(tmp_path_factory.mktemp("shipml-site") / "site")


@pytest.fixture(scope="session")
def base_url(site: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a browser that closes a connection early is not a site error

    handler = functools.partial(Quiet, directory=str(site))
    server = Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium; "
            "run `apt-get update && apt-get install -y chromium`"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object, base_url: str) -> Iterator[object]:
    """A fresh page that records every request leaving the site and every console error."""
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []
    errors: list[str] = []

    def on_request(request: object) -> None:
        if not request.url.startswith((base_url, "data:", "blob:", "about:")):
            outside.append(request.url)

    pg.on("request", on_request)
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not outside, f"the site fetched from outside itself: {outside[:5]}"
    assert not errors, f"console errors: {errors[:5]}"


def _site_file(site: Path, base_url: str, url: str) -> Path | None:
    """The file a site URL points to, or None when the URL leaves the site."""
    if not url.startswith(base_url):
        return None
    path = unquote(urlsplit(url).path)[len(urlsplit(base_url).path) :]
    if path == "" or path.endswith("/"):
        path += "index.html"
    return site / path


def test_home_page_renders(page, base_url):
    page.goto(base_url)  # the site root redirects to the book's first page
    page.wait_for_url(re.compile(r"/intro\.html$"))
    page.wait_for_load_state()
    assert "shipml" in page.title().lower()
    main = page.locator("main").first
    assert main.is_visible()
    text = main.inner_text()
    assert len(text.split()) > 100, text[:200]
    assert page.locator("nav a.reference").count() >= 10, "the sidebar lists the chapters"


def test_every_internal_link_resolves(site, base_url):
    # Theme template fragments under _static/ are not pages (they hold Jinja source).
    pages = sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)
    assert len(pages) >= 20
    broken: list[str] = []
    external: set[str] = set()
    loads_from_outside: list[str] = []
    checked = 0
    for html_file in pages:
        parser = _Links()
        parser.feed(html_file.read_text(encoding="utf-8", errors="replace"))
        page_url = base_url + html_file.relative_to(site).as_posix()
        for tag, link in parser.links:
            if link.startswith(("mailto:", "javascript:", "data:", "tel:")):
                continue
            target = urljoin(page_url, link)
            if urlsplit(target).scheme in ("http", "https") and not target.startswith(base_url):
                external.add(target)
                if tag != "a":
                    loads_from_outside.append(f"{html_file.relative_to(site)}: {link}")
                continue
            checked += 1
            path = _site_file(site, base_url, target.split("#")[0].split("?")[0])
            if path is None or not path.exists():
                broken.append(f"{html_file.relative_to(site)} -> {link}")
            elif path.is_dir() and not (path / "index.html").exists():
                broken.append(f"{html_file.relative_to(site)} -> {link} (folder without index)")
    print(f"checked {checked} internal links on {len(pages)} pages; {len(external)} external links")
    assert not broken, f"{len(broken)} broken internal links: {broken[:15]}"
    assert not loads_from_outside, f"pages load assets from outside: {loads_from_outside[:5]}"
    assert external, "the further-reading links (external, not followed) are counted"


def test_internal_links_are_served(site, base_url):
    """A sample of the links, fetched over HTTP: 200, not just a file on disk."""
    import urllib.request

    for rel in [
        "index.html",
        "slides/index.html",
        "slides/introduction.html",
        "chapters/introduction.html",
        "labs/index.html",
    ]:
        with urllib.request.urlopen(base_url + rel, timeout=10) as resp:  # noqa: S310 (loopback)
            assert resp.status == 200, rel


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c["id"] for c in CHAPTERS])
def test_chapter_reaches_its_deck(page, base_url, chapter):
    page.goto(base_url + chapter["files"][0].removesuffix(".md") + ".html")
    link = page.locator("a.shipml-deck-link")
    assert link.count() == 1, "the chapter links its deck once"
    link.click()
    page.wait_for_url(re.compile(rf"/slides/{re.escape(chapter['deck'])}\.html"))
    page.wait_for_selector(".reveal .slides section", state="attached")
    assert page.locator(".reveal .slides section").count() >= 5


@pytest.mark.parametrize("lab", LABS)
def test_lab_page_reaches_its_lab_folder(page, base_url, lab):
    page.goto(f"{base_url}labs/{lab}.html")
    assert page.locator("article h1").first.is_visible()
    link = page.locator("a.shipml-lab-folder-link")
    if (REPO / "labs" / lab / "README.md").is_file():
        assert link.count() == 1, f"labs/{lab}/ exists, so its page must link it"
        link.click()
        page.wait_for_url(re.compile(rf"/labs/{re.escape(lab)}/README\.html"))
        assert page.locator("body.shipml-lab-folder-page main").inner_text().strip()
        assert page.locator("nav.shipml-crumbs a").count() == 3
    else:
        assert link.count() == 0, "a planned lab has no link"
        assert page.locator(".shipml-lab-planned").count() == 1, "the page says the lab is planned"


@pytest.mark.parametrize("deck", [c["deck"] for c in CHAPTERS])
def test_deck_renders_first_slide_and_notes(page, base_url, deck):
    page.goto(f"{base_url}slides/{deck}.html")
    page.wait_for_selector(".reveal.ready", state="attached")
    first = page.locator(".reveal .slides > section.present").first
    assert first.is_visible()
    assert first.inner_text().strip(), "the first slide shows text"
    assert page.locator("aside.notes").count() >= 3, "speaker notes exist"


def test_mermaid_diagrams_render_as_svg(page, base_url):
    decks = [
        c["deck"]
        for c in CHAPTERS
        if "```mermaid" in (REPO / "slides" / "decks" / f"{c['deck']}.md").read_text("utf-8")
    ]
    assert decks, "at least one deck draws a mermaid diagram"
    for deck in decks:
        page.goto(f"{base_url}slides/{deck}.html")
        page.wait_for_selector(".reveal.ready", state="attached")
        page.evaluate(
            """() => {
                const code = document.querySelector('.reveal .slides pre code.mermaid');
                const section = code.closest('section');
                const idx = Reveal.getIndices(section);
                Reveal.slide(idx.h, idx.v);
            }"""
        )
        page.wait_for_selector(".reveal .slides section.present pre code.mermaid svg")
        box = page.locator(
            ".reveal .slides section.present pre code.mermaid svg"
        ).first.bounding_box()
        assert box and box["width"] > 50 and box["height"] > 20, f"{deck}: diagram too small: {box}"


def test_book_figures_are_images_in_the_site(site):
    """The executed examples put their plots into the pages (the notebooks ran)."""
    pngs = list((site / "_images").glob("*.png"))
    assert len(pngs) >= 6, f"expected the chapters' plots, found {len(pngs)}"


def _source_slides(deck: str) -> list[str]:
    """The slides of a deck's markdown: `---` between slides, `----` between vertical ones."""
    text = (REPO / "slides" / "decks" / f"{deck}.md").read_text(encoding="utf-8")
    body = text.split("\n---\n", 1)[1]  # after the front matter
    slides = []
    for horizontal in re.split(r"\n---\n", body):
        slides.extend(re.split(r"\n----\n", horizontal))
    return slides


@pytest.mark.parametrize("deck", [c["deck"] for c in CHAPTERS])
def test_deck_shows_every_slide_of_its_source_each_with_notes(page, base_url, deck):
    page.goto(f"{base_url}slides/{deck}.html")
    page.wait_for_selector(".reveal.ready", state="attached")
    counts = page.evaluate(
        """() => {
            const leaves = [...document.querySelectorAll('.reveal .slides section')]
                .filter(s => !s.querySelector('section'));
            return {slides: leaves.length,
                    noted: leaves.filter(s => s.querySelector('aside.notes')).length,
                    total: Reveal.getTotalSlides()};
        }"""
    )
    expected = len(_source_slides(deck))
    print(f"{deck}: {counts['slides']} slides")
    assert counts["slides"] == counts["total"] == expected, (counts, expected)
    assert counts["noted"] == counts["slides"], f"{deck}: slides without speaker notes"


def test_deck_figures_are_the_books_plots_and_load(page, base_url, site):
    figures = sorted(p.stem for p in (site / "figures").glob("*.png"))
    assert len(figures) >= 6, f"the book exports its plots for the decks: {figures}"
    shown = 0
    for chapter in CHAPTERS:
        deck = chapter["deck"]
        source = (REPO / "slides" / "decks" / f"{deck}.md").read_text(encoding="utf-8")
        names = re.findall(r"\.\./figures/([a-z0-9-]+)\.png", source)
        if not names:
            continue
        page.goto(f"{base_url}slides/{deck}.html")
        page.wait_for_selector(".reveal.ready", state="attached")
        for name in names:
            assert name in figures, f"{deck} shows {name}, which the book did not export"
            page.evaluate(
                """(name) => {
                    const img = document.querySelector(`img[srcset$="figures/${name}.png"]`);
                    const idx = Reveal.getIndices(img.closest('section'));
                    Reveal.slide(idx.h, idx.v);
                }""",
                name,
            )
            img = page.locator(f'section.present img[srcset$="figures/{name}.png"]')
            page.wait_for_function(
                "(el) => el.complete && el.naturalWidth > 100", arg=img.element_handle()
            )
            box = img.bounding_box()
            assert box and box["width"] > 200 and box["height"] > 100, f"{deck}/{name}: {box}"
            shown += 1
    assert shown >= 6, f"only {shown} figures shown in the decks"


ALL_DECKS = sorted(p.stem for p in (REPO / "slides" / "decks").glob("*.md"))


@pytest.mark.parametrize("deck", ALL_DECKS)
def test_deck_shows_figures_and_no_image_is_broken(page, base_url, deck):
    """Every deck shows at least one figure (a book plot or a drawing), and every image of
    every deck loads: each is shown on its slide with real pixels, and no request of the deck
    page fails or answers with an error status."""
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(f"{request.url} (failed)"))
    page.on(
        "response",
        lambda response: failed.append(f"{response.url} ({response.status})")
        if response.status >= 400
        else None,
    )
    page.goto(f"{base_url}slides/{deck}.html")
    page.wait_for_selector(".reveal.ready", state="attached")
    images = page.evaluate(
        """() => [...document.querySelectorAll('.reveal .slides img')]
                  .map(img => img.getAttribute('srcset') || img.getAttribute('src'))"""
    )
    assert images, f"{deck}: no figure on any slide"
    for index, source in enumerate(images):
        page.evaluate(
            """(index) => {
                const img = document.querySelectorAll('.reveal .slides img')[index];
                const idx = Reveal.getIndices(img.closest('section'));
                Reveal.slide(idx.h, idx.v);
            }""",
            index,
        )
        img = page.locator(".reveal .slides img").nth(index)
        page.wait_for_function("(el) => el.complete", arg=img.element_handle())
        width = img.evaluate("(el) => el.naturalWidth")
        assert width > 100, f"{deck}: image {source!r} is broken (natural width {width})"
        assert img.is_visible(), f"{deck}: image {source!r} is not shown on its slide"
        box = img.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 100, f"{deck}/{source}: {box}"
        # the image fits on the slide (reveal scales the 1100x720 slide area to the window)
        slides = page.locator(".reveal .slides").bounding_box()
        assert box["y"] + box["height"] <= slides["y"] + slides["height"] + 2, (
            f"{deck}: image {source!r} runs off the bottom of its slide"
        )
    assert not failed, f"{deck}: requests failed: {failed[:5]}"
    print(f"{deck}: {len(images)} images: {images}")
