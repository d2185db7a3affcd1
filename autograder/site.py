"""Build the shipml book and slides into one static site, offline.

    python -m autograder.site --out DIR [--clean] [--verbose]

The site has the Jupyter Book at its root and the reveal.js decks under ``slides/``:

1. slides: ``npm ci`` in ``slides/`` when ``node_modules`` is missing (the lockfile pins
   reveal-md), then ``reveal-md decks --static`` into ``slides/_build/html``, and a copy of
   mermaid's ``mermaid.min.js`` (the static export links it but does not copy it);
2. book: ``jupyter-book build -W -n --keep-going book/``: warnings fail the build, and the
   book's notebooks are executed with a cache kept in ``book/_build/.jupyter_cache`` (a clean
   clone re-executes every example). The notebooks import ``autograder`` and the reference
   model package, so the build puts the repository root and ``labs/reference`` on PYTHONPATH.
   jupyter-book runs one notebook at a time, so first the notebooks the cache lacks are
   executed one per core, each in its own process, exactly as jupyter-book would (same
   reader, executor, working folder, timeout and environment), and cached; the build then
   finds every one in the cache. A notebook whose cached copy does not match (or whose run
   failed) is simply executed again by jupyter-book, which reports any error as before;
3. assembly: both outputs are copied into one folder, which then replaces ``DIR``.

Steps 1 and 2 run side by side (the slides mostly wait on npm's downloads).

``build_site`` raises :class:`~autograder.errors.ShipmlError` with a one-line message that
carries the failing tool's last output lines.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from autograder.errors import ShipmlError
from autograder.paths import BOOK_DIR, KIT_ROOT, SLIDES_DIR

MARKER = ".shipml-site"
TAIL_LINES = 12
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Lines that every run prints and that never explain a failure.
_NOISE = ("Kernel is running over TCP without encryption",)
BOOK_TIMEOUT_S = 1800
SLIDES_TIMEOUT_S = 600


def _tail(output: str, n: int = TAIL_LINES) -> str:
    """The lines worth showing from a failed tool: its warnings and errors, then its last lines."""
    lines = [
        line.rstrip()
        for line in _ANSI.sub("", output).splitlines()
        if line.strip()
        and not any(noise in line for noise in _NOISE)
        and set(line.strip()) != {"="}
    ]
    flagged = [
        line
        for line in lines
        if any(key in line for key in ("WARNING", "ERROR", "Error", "error:", "Traceback"))
    ]
    shown = flagged[:6] + [line for line in lines[-n:] if line not in flagged[:6]]
    return " | ".join(shown[-(n + 6) :])


def _errors(output: str) -> str:
    """The exception of each failed notebook (myst-nb saves its traceback to a log file)."""
    found = []
    for log in re.findall(r"traceback saved in: (\S+\.err\.log)", _ANSI.sub("", output)):
        try:
            lines = [x for x in Path(log).read_text(encoding="utf-8").splitlines() if x.strip()]
        except OSError:
            continue
        if lines:
            found.append(f"{Path(log).name.removesuffix('.err.log')}: {_ANSI.sub('', lines[-1])}")
    return "".join(f"{line} | " for line in found)


def _run(
    cmd: Sequence[str],
    *,
    cwd: Path,
    tool: str,
    env: dict[str, str] | None = None,
    timeout: float,
    verbose: bool = False,
) -> str:
    """Run one build tool; return its output, or raise ShipmlError with its last lines."""
    try:
        proc = subprocess.run(
            list(cmd),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=None if verbose else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ShipmlError(f"{tool}: cannot run {cmd[0]!r}: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        out = exc.output if isinstance(exc.output, str) else ""
        raise ShipmlError(f"{tool} timed out after {timeout:.0f} s: {_tail(out)}") from exc
    output = proc.stdout or ""
    if proc.returncode != 0:
        raise ShipmlError(
            f"{tool} failed (exit {proc.returncode}): {_errors(output)}{_tail(output)}"
        )
    return output


def _tool(name: str, hint: str) -> str:
    """Find an executable: next to this Python first (a venv), then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise ShipmlError(f"{name} not found: {hint}")
    return found


def build_slides(*, verbose: bool = False) -> Path:
    """Build every deck in ``slides/decks/`` into ``slides/_build/html``; return that folder."""
    reveal_md = SLIDES_DIR / "node_modules" / ".bin" / "reveal-md"
    if not reveal_md.exists():
        npm = _tool("npm", "install Node.js 20 and npm to build the slides")
        _run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"],
            cwd=SLIDES_DIR,
            tool="npm ci (slides/)",
            timeout=SLIDES_TIMEOUT_S,
            verbose=verbose,
        )
        if not reveal_md.exists():
            raise ShipmlError(
                "npm ci in slides/ finished but node_modules/.bin/reveal-md is missing"
            )
    out = SLIDES_DIR / "_build" / "html"
    if out.exists():
        shutil.rmtree(out)
    _run(
        [str(reveal_md), "decks", "--static", str(out)],
        cwd=SLIDES_DIR,
        tool="reveal-md",
        timeout=SLIDES_TIMEOUT_S,
        verbose=verbose,
    )
    decks = sorted(p.stem for p in (SLIDES_DIR / "decks").glob("*.md"))
    missing = [d for d in decks if not (out / f"{d}.html").is_file()]
    if not decks or missing:
        raise ShipmlError(f"reveal-md did not write the decks {missing or '(none found)'} in {out}")
    # The static export links mermaid/dist/mermaid.min.js but does not copy it.
    mermaid = SLIDES_DIR / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
    if not mermaid.is_file():
        raise ShipmlError(f"{mermaid} is missing: run `npm ci` in slides/")
    (out / "mermaid" / "dist").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mermaid, out / "mermaid" / "dist" / "mermaid.min.js")
    return out


def book_env() -> dict[str, str]:
    """The environment of the book build: the notebooks import autograder and the reference model."""
    env = dict(os.environ)
    paths = [str(KIT_ROOT), str(KIT_ROOT / "labs" / "reference")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # no debugger warning on the kernels' stderr
    env.setdefault("PYTHONHASHSEED", "0")
    # One thread per kernel: OpenMP (scikit-learn's gradient boosting) spin-waits badly when
    # the cores are shared with other kernels, and one thread keeps results identical everywhere.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _book_config() -> dict:
    import yaml

    return yaml.safe_load((BOOK_DIR / "_config.yml").read_text(encoding="utf-8")) or {}


def _toc_files() -> list[Path]:
    """The book's pages that the build reads (``only_build_toc_files``): the TOC's root and files."""
    import yaml

    toc = yaml.safe_load((BOOK_DIR / "_toc.yml").read_text(encoding="utf-8")) or {}
    names: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    names.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    found = []
    for name in dict.fromkeys(names):
        for suffix in ("", ".md", ".ipynb"):
            path = BOOK_DIR / f"{name}{suffix}"
            if path.is_file():
                found.append(path)
                break
    return found


def _read_notebook(path: Path, md_config: object) -> object | None:
    """``path`` as myst-nb reads it in the build (a MyST notebook), or None for a plain page."""
    from myst_nb.core.read import is_myst_markdown_notebook, read_myst_markdown_notebook

    text = path.read_text(encoding="utf-8")
    if path.suffix != ".md" or not is_myst_markdown_notebook(text):
        return None
    return read_myst_markdown_notebook(text, config=md_config, add_source_map=True, path=str(path))


def _execute_one(source: str, target: str, timeout: float, allow_errors: bool) -> None:
    """Worker (its own process, the book's environment): execute the notebook ``source`` holds
    as jupyter-book's cache mode does, and write it with the run's outcome to ``target``."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    with open(source, encoding="utf-8") as fh:
        job = json.load(fh)
    nb = nbformat.from_dict(job["notebook"])
    result = single_nb_execution(nb, cwd=job["cwd"], allow_errors=allow_errors, timeout=timeout, meta_override=True)
    out = {"notebook": nb, "seconds": result.time, "error": None if result.err is None else repr(result.err)}
    with open(target, "w", encoding="utf-8") as fh:
        json.dump(out, fh)


def execute_notebooks(*, jobs: int | None = None, verbose: bool = False) -> dict[str, float]:
    """Execute the book's notebooks that ``book/_build/.jupyter_cache`` lacks, ``jobs`` at a
    time (default: one per core), and cache each that ran without error; return the seconds
    each took, by page. jupyter-book then finds them in the cache (a notebook left out, or
    whose run failed, it executes itself and reports as it always did)."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from myst_parser.config.main import MdParserConfig

    config = _book_config()
    execute = config.get("execute") or {}
    if execute.get("execute_notebooks", "auto") != "cache":
        return {}
    parse = config.get("parse") or {}
    md_config = MdParserConfig(enable_extensions=set(parse.get("myst_enable_extensions") or []))
    timeout = float(execute.get("timeout", 30))
    allow_errors = bool(execute.get("allow_errors", False))
    cache = get_cache(str(BOOK_DIR / execute.get("cache", "_build/.jupyter_cache")))
    todo = []
    for path in _toc_files():
        nb = _read_notebook(path, md_config)
        if nb is None:
            continue
        try:
            cache.match_cache_notebook(nb)
        except KeyError:
            todo.append((path, nb))
    if not todo:
        return {}
    # The longest first, as far as a page's size tells (a chapter's examples grow with its text).
    todo.sort(key=lambda item: item[0].stat().st_size, reverse=True)
    env = book_env()
    took: dict[str, float] = {}
    lock = threading.Lock()

    with tempfile.TemporaryDirectory(prefix="shipml-nb-") as tmp:

        def run(index: int, path: Path, nb: object) -> None:
            source, target = Path(tmp) / f"{index}.in.json", Path(tmp) / f"{index}.out.json"
            source.write_text(json.dumps({"notebook": nb, "cwd": str(path.parent)}), encoding="utf-8")
            code = (f"from autograder.site import _execute_one; "
                    f"_execute_one({str(source)!r}, {str(target)!r}, {timeout!r}, {allow_errors!r})")
            proc = subprocess.run([sys.executable, "-c", code], cwd=BOOK_DIR, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=not verbose, text=True, timeout=timeout * 50 + 300, check=False)
            if proc.returncode != 0 or not target.is_file():
                return  # jupyter-book runs it again and reports why
            import nbformat

            done = json.loads(target.read_text(encoding="utf-8"))
            if done["error"] is not None:
                return
            executed = nbformat.from_dict(done["notebook"])
            with lock:  # one writer for the cache's database
                cache.cache_notebook_bundle(
                    CacheBundleIn(executed, str(path), data={"execution_seconds": done["seconds"]}),
                    check_validity=False, overwrite=True)
                took[str(path.relative_to(BOOK_DIR))] = done["seconds"]

        workers = max(1, min(len(todo), jobs or os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(run, i, path, nb) for i, (path, nb) in enumerate(todo)]:
                future.result()
    return took


def build_book(*, clean: bool = False, verbose: bool = False) -> Path:
    """Build the Jupyter Book (executing its notebooks, cached); return ``book/_build/html``."""
    build_dir = BOOK_DIR / "_build"
    if clean and build_dir.exists():
        shutil.rmtree(build_dir)
    jb = _tool(
        "jupyter-book", "install the project with `pip install -e .` (jupyter-book==1.0.4.post1)"
    )
    execute_notebooks(verbose=verbose)
    _run(
        [jb, "build", "-W", "-n", "--keep-going", "."],
        cwd=BOOK_DIR,  # the execution cache path in _config.yml is relative to the cwd
        tool="jupyter-book build",
        env=book_env(),
        timeout=BOOK_TIMEOUT_S,
        verbose=verbose,
    )
    html = build_dir / "html"
    if not (html / "index.html").is_file():
        raise ShipmlError(f"jupyter-book finished but wrote no {html / 'index.html'}")
    return html


def _check_out(out: Path) -> None:
    """Refuse to replace a folder that is not a previous site (or empty), or that holds the repo."""
    if out == KIT_ROOT or out in KIT_ROOT.parents or out in (BOOK_DIR, SLIDES_DIR):
        raise ShipmlError(f"refusing to write the site over {out}: choose a new folder")
    if out.exists():
        if not out.is_dir():
            raise ShipmlError(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise ShipmlError(
                f"{out} is not empty and is not a site built by shipml: choose an empty or new folder"
            )


def build_site(out: Path, *, clean: bool = False, verbose: bool = False) -> Path:
    """Build the book and the slides into one static site at ``out``; return the site root.

    ``clean`` removes the book's build folder (and its execution cache) first, so every
    notebook runs again. Raises ShipmlError with a one-line message when a step fails.
    """
    out = Path(out).expanduser().resolve()
    _check_out(out)
    # The slides (npm's downloads, reveal-md) build while the book's notebooks run.
    with ThreadPoolExecutor(max_workers=1) as pool:
        slides = pool.submit(build_slides, verbose=verbose)
        try:
            book_html = build_book(clean=clean, verbose=verbose)
        except BaseException:
            slides.exception()  # wait for it; the book's error is the one to report
            raise
        slides_html = slides.result()

    staging = out.parent / f".{out.name}.building"
    if staging.exists():
        shutil.rmtree(staging)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        book_html, staging, ignore=shutil.ignore_patterns(".buildinfo", ".doctrees", "reports")
    )
    if (staging / "slides").exists():
        raise ShipmlError("the book has a page folder named slides/, which the decks need")
    shutil.copytree(slides_html, staging / "slides")
    if not (staging / "favicon.ico").exists():  # browsers ask the site root for one
        shutil.copyfile(slides_html / "favicon.ico", staging / "favicon.ico")
    (staging / MARKER).write_text("built by python -m autograder.site\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return out


def count_pages(site: Path) -> int:
    """The number of HTML pages in a built site."""
    return sum(1 for _ in Path(site).rglob("*.html"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.site",
        description="Build the shipml book and slide decks into one static site (offline).",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write the site into")
    parser.add_argument(
        "--clean",
        action="store_true",
        help="remove book/_build first, so every notebook is executed again",
    )
    parser.add_argument("--verbose", action="store_true", help="show the build tools' output")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        site = build_site(args.out, clean=args.clean, verbose=args.verbose)
    except ShipmlError as exc:
        print(f"shipml: error: {exc}", file=sys.stderr)
        return exc.exit_code
    took = time.monotonic() - start
    print(f"built {site} ({count_pages(site)} pages) in {took:.0f} s; open {site / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
