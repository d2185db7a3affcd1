"""Shared fixtures: the kit's paths, fixture submissions for the engine's tests, each lab's
student release and graded class run (once per session), and the test tiers.

Tiers are marked here, from what a test uses and runs (``pytest_collection_modifyitems``), never
by hand: ``fast`` for a test that needs no service, and for the others every reason it is not
(``TIERS``: docker, browser, classrun, grading, service, build, training), found in the fixtures
it uses and in the code of the test, its fixtures and the helpers they call. ``make test-fast``
runs ``-m fast``.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import tomllib
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

REPO = Path(__file__).resolve().parent.parent
collect_ignore_glob = ["fixtures/*"]
"""The fixtures are teams and labs the tests grade (a team's own tests among them), not tests."""
ENGINE_FIXTURE = REPO / "tests" / "fixtures" / "engine"
LABS_DIR = REPO / "labs"
LAB_NAMES = sorted(p.parent.name for p in LABS_DIR.glob("*/lab.toml"))
"""Every lab of the kit: a folder of labs/ with a lab.toml. Adding one adds its proof."""
PROOF_FILE = "proof.toml"


def shipml(*args: str, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real CLI as a separate process, the way users do."""
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"shipml {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_fixture_submission(root: Path, mode: str, *, test_args: str = "", startup: float = 10) -> Path:
    """A submission folder whose service behaves as ``mode`` (see fixtures/engine/server.py)."""
    folder = root / mode
    folder.mkdir(parents=True)
    shutil.copy(ENGINE_FIXTURE / "server.py", folder)
    shutil.copy(ENGINE_FIXTURE / "steal.py", folder)
    test_cmd = f"{{python}} steal.py {test_args}" if mode == "steal" else "{python} -c 'print(\"tests ok\")'"
    if mode == "flood":
        test_cmd = "yes 'flooding the log' | head -c 200000000; echo done"
    (folder / "submission.toml").write_text(
        f"""[team]
name = "team-{mode}"
members = [{{ id = "{mode}-student" }}]

[commands]
serve = '''{{python}} server.py --port {{port}} --mode {mode}'''
test = '''{test_cmd}'''

[service]
health_path = "/health"
startup_timeout = {startup}
"""
    )
    return folder


@pytest.fixture
def fixture_submission(tmp_path: Path):
    def make(mode: str, **kw: object) -> Path:
        return make_fixture_submission(tmp_path / "class", mode, **kw)  # type: ignore[arg-type]

    return make


def is_root() -> bool:
    return os.geteuid() == 0


@pytest.fixture(scope="session")
def docker_engine():
    """A Docker engine of the test session's own (tests/engines.py), or None where none can
    run here: not root, no docker.io and debootstrap (``make system-deps`` installs them), or
    an engine that cannot start (a container without the rights, no Debian mirror). The tests
    then fall back (or skip) and say why; with ``SHIPML_REQUIRE_DOCKER=1``, which CI sets, an
    engine that cannot run fails them instead."""
    from engines import DockerEngine, docker_available

    required = os.environ.get("SHIPML_REQUIRE_DOCKER") == "1"
    engine = None
    if docker_available():
        try:
            engine = DockerEngine()
        except (AssertionError, OSError, subprocess.SubprocessError) as exc:
            if required:
                raise
            warnings.warn(f"no Docker engine for the simulated Gradescope and Actions: {exc}", stacklevel=1)
    elif required:
        raise AssertionError("SHIPML_REQUIRE_DOCKER=1, but this machine cannot run the engine (root, docker.io and debootstrap: make system-deps)")
    yield engine
    if engine is not None:
        engine.close()


# ------------------------------------------------------------------ each lab's proof, declared


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StarterBound(_Strict):
    """How low a lab's starter scores: at most ``max_score``; 0 on ``zero``, full points on
    ``full``, less than the given points on ``below``."""

    max_score: float
    zero: list[str] = []
    full: list[str] = []
    below: dict[str, float] = {}


class CheatApp(_Strict):
    """The code every cheat of a lab is built from: ``files`` of ``folder`` (from the kit's
    root), run by ``commands`` ({mode} is the cheat's name)."""

    folder: str
    files: list[str]
    commands: dict[str, str]
    startup_timeout: float = 30


class Cheat(_Strict):
    """One cheap cheat: what it fakes, the checks it must lose, and how its folder differs:
    built from the lab's ``[cheat_app]``, or (``patch``, a path in the lab's folder) the
    reference with that patch applied, as a mutant is."""

    fakes: str
    fails: list[str]
    # Checks the faked property is only a part of (the run log's counts are a quarter of
    # schema_change): the cheat loses at least these points there, and may keep the rest.
    partly: dict[str, float] = {}
    patch: str = ""
    prepare: str = ""  # run in the team's folder before grading ({python}, {data}: the public data)
    commands: dict[str, str] = {}


class Proof(_Strict):
    """``labs/<lab>/proof.toml``: what the lab's proof needs beyond the reference and mutants."""

    starter: StarterBound
    cheat_app: CheatApp | None = None
    cheats: dict[str, Cheat] = {}

    def check_ids(self) -> set[str]:
        """Every check id the declaration names (each must be one of the lab's)."""
        bound = self.starter
        return {*bound.zero, *bound.full, *bound.below, *(c for cheat in self.cheats.values() for c in (*cheat.fails, *cheat.partly))}


def load_proof(lab: str) -> Proof:
    path = LABS_DIR / lab / PROOF_FILE
    if not path.is_file():
        raise AssertionError(f"{path}: missing; every lab declares its proof there (the starter's bound, its cheats; see labs/serving/{PROOF_FILE})")
    proof = Proof.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    if any(not cheat.patch for cheat in proof.cheats.values()) and proof.cheat_app is None:
        raise AssertionError(f"{path}: declares a cheat without a patch, and no [cheat_app] to build it from")
    for name, cheat in proof.cheats.items():
        if cheat.patch and not (path.parent / cheat.patch).is_file():
            raise AssertionError(f"{path}: cheat {name}'s patch {cheat.patch} is missing")
    return proof


def lab_notebooks(lab: Any) -> list[Path]:
    """A notebook lab's source notebooks (``course/source/<assignment>/*.ipynb``); [] for a lab
    whose reference is a folder."""
    return sorted((lab.root / "course" / "source").glob("*/*.ipynb"))


_IGNORE = shutil.ignore_patterns("__pycache__", "*.joblib")


def _notebook_team(lab: Any, release: Path, dest: Path, mutant: Any | None) -> Path:
    """The lab's starter folder with its notebook as released, holding the reference answers
    (and ``mutant``'s changes: see autograder/engine/mutants.py)."""
    from autograder.engine.mutants import starter_dir
    from autograder.integrations.nbgrader_course import build_submission

    (source,) = lab_notebooks(lab)  # a mutant's cells do not say which notebook: one per lab
    shutil.copytree(starter_dir(lab), dest, ignore=_IGNORE)
    build_submission(source, release / source.name, dest / source.name, mutant)
    return dest


def cheat_submission(lab_name: str, proof: Proof, name: str, folder: Path, public: Path) -> Path:
    """A whole team folder for cheat ``name``: the cheat app's files and commands (or the
    reference with the cheat's patch, and the reference's commands), and what its ``prepare``
    writes."""
    app, cheat = proof.cheat_app, proof.cheats[name]
    if cheat.patch:
        from autograder.engine.mutants import Mutant, materialize
        from autograder.engine.spec import find_lab

        lab = find_lab(lab_name)
        materialize(lab, Mutant(name, cheat.fakes, patch=lab.root / cheat.patch), folder)
        with (folder / "submission.toml").open("rb") as file:
            own = tomllib.load(file)
        commands, startup = own["commands"] | cheat.commands, own.get("service", {}).get("startup_timeout", 30)
    else:
        assert app is not None
        folder.mkdir(parents=True)
        for file in app.files:
            shutil.copy(REPO / app.folder / file, folder / file)
        commands = {step: command.replace("{mode}", name) for step, command in app.commands.items()} | cheat.commands
        startup = app.startup_timeout
    if cheat.prepare:
        argv = shlex.split(cheat.prepare.replace("{python}", shlex.quote(sys.executable)).replace("{data}", shlex.quote(str(public))))
        subprocess.run(argv, cwd=folder, check=True, capture_output=True, timeout=600)
    table = "\n".join(f"{step} = {_toml_string(command)}" for step, command in commands.items())
    (folder / "submission.toml").write_text(
        f'[team]\nname = "cheat {name}"\n\n[commands]\n{table}\n\n[service]\nstartup_timeout = {startup:g}\n')
    return folder


def _toml_string(text: str) -> str:
    import json

    return json.dumps(text)  # a JSON string is a valid TOML basic string


def build_class(lab_name: str, release: Path, root: Path) -> list[str]:
    """The lab's proof class in ``root``, one folder per team: ``reference``, ``starter`` (the
    starter folder with the notebooks as released), ``mutant-<name>`` for each mutant proven
    through the harness (``fails`` given) and ``cheat-<name>`` for each declared cheat."""
    from autograder.data import write_public
    from autograder.engine.mutants import list_mutants, materialize, reference_dir, starter_dir
    from autograder.engine.spec import find_lab

    lab, proof = find_lab(lab_name), load_proof(lab_name)
    notebooks = lab_notebooks(lab)
    root.mkdir(parents=True)
    if notebooks:
        _notebook_team(lab, release, root / "reference", None)
    else:
        shutil.copytree(reference_dir(lab), root / "reference", ignore=_IGNORE)
    shutil.copytree(starter_dir(lab), root / "starter", ignore=_IGNORE)
    for notebook in release.glob("*.ipynb"):
        shutil.copy(notebook, root / "starter" / notebook.name)
    for mutant in list_mutants(lab):
        if mutant.fails is None:
            continue  # proven elsewhere (a notebook lab's nbgrader cycle)
        dest = root / f"mutant-{mutant.name}"
        if mutant.patch is not None:
            materialize(lab, mutant, dest)
        else:
            _notebook_team(lab, release, dest, mutant)
    if proof.cheats:
        public = write_public(root.parent / "public")
        for name in proof.cheats:
            cheat_submission(lab_name, proof, name, root / f"cheat-{name}", public)
    return sorted(p.name for p in root.iterdir())


class _OncePerSession:
    """``get(key)`` computes ``make(key)`` once per session; a failure is kept and raised again
    for every test that needs the same key, so a broken class run is not run twice."""

    def __init__(self, make: Callable[[str], Path]) -> None:
        self.make, self.done, self.lock = make, {}, threading.Lock()

    def __call__(self, key: str) -> Path:
        with self.lock:
            if key not in self.done:
                try:
                    self.done[key] = self.make(key)
                except BaseException as exc:
                    self.done[key] = exc
                    raise
            value = self.done[key]
        if isinstance(value, BaseException):
            raise AssertionError(f"{key}: failed earlier in this session ({value!r})")
        return value


TIMINGS: dict[str, str] = {}
"""What the session's long fixtures took, printed at the end of the run (pytest_terminal_summary)."""


class _ClassRuns:
    """The session's student releases and proof-class runs (``lab_release``, ``graded_lab``).

    Each lab's class is graded once per session, in a thread. ``queue(labs)`` starts them in
    the background when the session starts, while the other tests run: a class run is many
    minutes of CPU, and the rest of the suite leaves much of the machine idle (waiting on
    services, Docker, a browser). The tests that read a class run come last
    (``pytest_collection_modifyitems``). ``__call__(lab)`` waits for the lab's run, or starts
    it at once with two jobs if no queue has. While queued runs go on, ``_help`` keeps as many
    teams graded at once as the machine has cores, with more ``grade-all`` runs over the classes
    still being graded (classrun's claims share a class between runs): when one lab's class is
    done, or the other tests are, no core idles. A failure is kept
    and raised for every test that needs it: a broken run is not run twice. ``stop()`` ends what
    still runs when the session ends."""

    def __init__(self) -> None:
        self.tmp: pytest.TempPathFactory | None = None
        self.releases = _OncePerSession(self._release)
        self.lock = threading.Lock()
        self.futures: dict[str, Future[Path]] = {}
        self.running: set[subprocess.Popen[str]] = set()
        self.classes: dict[subprocess.Popen[str], tuple[str, Path, Path]] = {}  # run: lab, teams, out
        self.helping: threading.Thread | None = None
        self.helpers: dict[str, int] = {}  # lab: helper runs started
        self.stopped = False

    def _folder(self, name: str) -> Path:
        assert self.tmp is not None, "the session fixture _class_runs_start_early binds the temporary folders"
        return self.tmp.mktemp(name)

    def _release(self, lab: str) -> Path:
        out = self._folder(f"release-{lab}") / f"{lab}-template"
        started = time.monotonic()
        proc = shipml("release", lab, "--out", str(out), timeout=900)
        assert proc.returncode == 0, proc.stderr
        TIMINGS[f"release {lab}"] = f"{time.monotonic() - started:.0f} s"
        return out

    def _grade(self, lab: str, jobs: int) -> Path:
        from autograder.engine.spec import find_lab

        root = self._folder(f"class-{lab}")
        teams = build_class(lab, self.releases(lab), root / "teams")
        out = root / "out"
        limit = find_lab(lab).lab.time_limit
        started = time.monotonic()
        argv = [sys.executable, "-m", "autograder", "grade-all", lab, str(root / "teams"), "--out", str(out), "--jobs", str(jobs)]
        with self.lock:
            if self.stopped:
                raise AssertionError("the session ended first")
            proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.running.add(proc)
            self.classes[proc] = (lab, root / "teams", out)
        try:
            _, stderr = proc.communicate(timeout=min(5400, -(-len(teams) // jobs) * limit + 120))
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
            raise AssertionError(f"the class run of {lab} did not finish in time:\n{stderr[-3000:]}") from None
        finally:
            with self.lock:
                self.running.discard(proc)
        assert proc.returncode == 0, stderr
        where = "in the test that needed it" if threading.current_thread() is threading.main_thread() else "in the background"
        helped = f", then {self.helpers[lab]} more run(s) beside it" if self.helpers.get(lab) else ""
        TIMINGS[f"class run {lab}"] = f"{time.monotonic() - started:.0f} s for {len(teams)} teams, {jobs} at a time{helped}, {where}"
        return out

    def _claim(self, lab: str) -> Future[Path] | None:
        """A new future for ``lab``'s run, or None when one exists (caller holds no lock)."""
        with self.lock:
            if lab in self.futures:
                return None
            future: Future[Path] = Future()
            self.futures[lab] = future
            return future

    def _run(self, lab: str, jobs: int, future: Future[Path]) -> None:
        try:
            future.set_result(self._grade(lab, jobs))
        except BaseException as exc:  # noqa: BLE001 - kept for every test that needs it
            future.set_exception(exc)

    def queue(self, labs: list[str]) -> None:
        """Grade each of ``labs`` in the background, one team at a time (at the machine's normal
        CPU share: a lower one starved the pipeline lab's checks past their time limits)."""
        for lab in labs:
            future = None if self.stopped else self._claim(lab)
            if future is not None:
                threading.Thread(target=self._run, args=(lab, 1, future), name=f"class run {lab}", daemon=True).start()
        self._start_helping()

    def _start_helping(self) -> None:
        with self.lock:
            if self.helping is None and not self.stopped:
                self.helping = threading.Thread(target=self._help, name="class run helpers", daemon=True)
                self.helping.start()

    def __call__(self, lab: str) -> Path:
        future = self._claim(lab)
        if future is not None:
            self._run(lab, 2, future)
        try:
            return self.futures[lab].result()
        except BaseException as exc:
            raise AssertionError(f"the class run of {lab} failed in this session: {exc}") from None

    def _grading_now(self) -> dict[str, int]:
        """How many teams each lab's class runs grade at this moment: their ``grade`` processes."""
        with self.lock:
            labs = {proc.pid: lab for proc, (lab, _, _) in self.classes.items() if proc.poll() is None}
        busy = dict.fromkeys(labs.values(), 0)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # a process that ended while we looked
            if parent in labs:
                busy[labs[parent]] += 1
        return busy

    def _help(self) -> None:
        """While class runs go on with fewer teams graded at once than the machine has cores, start
        another ``grade-all`` (one job) over the class with the most teams nobody grades yet. (Two
        at once beside the other tests is what the queued runs start with; no more: a lower CPU
        share starved the pipeline lab's checks past their time limits.)"""
        cores, short = os.cpu_count() or 1, 0
        while not self.stopped and not all(future.done() for future in list(self.futures.values())):
            busy = self._grading_now()  # the labs whose class run has started and goes on
            if not busy:
                time.sleep(2)
                continue
            with self.lock:
                where = {lab: (teams, out) for lab, teams, out in self.classes.values() if lab in busy}
            left = {lab: sum(not (out / t.name / "results.json").is_file() for t in teams.iterdir() if t.is_dir()) - busy[lab]
                    for lab, (teams, out) in where.items()}
            lab = max(left, key=lambda name: left[name])
            # Short twice in a row: a run between two teams has no grade process for a moment.
            short = short + 1 if sum(busy.values()) < cores and left[lab] > 0 else 0
            if short < 2:
                time.sleep(2)
                continue
            short = 0
            teams, out = where[lab]
            argv = [sys.executable, "-m", "autograder", "grade-all", lab, str(teams), "--out", str(out), "--jobs", "1"]
            with self.lock:
                if self.stopped:
                    return
                proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
                self.running.add(proc)
                self.classes[proc] = (lab, teams, out)
            self.helpers[lab] = self.helpers.get(lab, 0) + 1
            time.sleep(10)  # its first team's grade process starts within seconds

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            running = list(self.running)
        for proc in running:  # the grader's teams die with it (the sandbox's promise)
            proc.kill()


CLASS_RUNS = _ClassRuns()
_LABS_READ = re.compile(r"""graded_lab\(\s*["']([\w-]+)["']""")


def labs_read(item: pytest.Item) -> list[str]:
    """The labs whose class run ``item`` reads: its ``lab`` parameter, or the names its code
    passes to ``graded_lab``."""
    if "graded_lab" not in getattr(item, "fixturenames", ()):
        return []
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "lab" in params:
        return [params["lab"]]
    return _LABS_READ.findall(inspect.getsource(item.function))  # type: ignore[attr-defined]


@pytest.fixture(scope="session", autouse=True)
def _class_runs_start_early(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Binds the session's temporary folders, and queues the class runs the selected tests read
    when other tests run meanwhile (alone, a class run starts in its first test, with two jobs)."""
    CLASS_RUNS.tmp = tmp_path_factory
    # Made here, in the main thread: TempPathFactory makes the session's folder on first use, and
    # two threads at once would make two (the second one unlocked, so another pytest session's
    # clean-up of old folders may delete a class run from under it).
    tmp_path_factory.getbasetemp()
    items = request.session.items
    wanted = list(dict.fromkeys(lab for item in items for lab in labs_read(item)))
    if wanted and any(not labs_read(item) for item in items):
        CLASS_RUNS.queue(wanted)
    yield
    CLASS_RUNS.stop()


@pytest.fixture(scope="session")
def lab_release() -> Callable[[str], Path]:
    """``lab_release(lab)``: the lab's student release (``shipml release LAB --out DIR``), written
    once per session."""
    return CLASS_RUNS.releases


@pytest.fixture(scope="session")
def graded_lab(lab_release: Callable[[str], Path]) -> Callable[[str], Path]:
    """``graded_lab(lab)``: the grading output of the lab's proof class (``build_class``: the
    reference, the starter, its mutants and cheats), graded in one class run as an instructor
    would (``shipml grade-all LAB DIR --out OUT``), once per session, maybe in the background
    (``_ClassRuns``). Per team: ``OUT/<team>/results.json`` and
    ``OUT/<team>/instructor/results.json``; ``OUT/grades.csv``."""
    return CLASS_RUNS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("session fixtures")
        for what, took in TIMINGS.items():
            terminalreporter.write_line(f"{what}: {took}")


# ------------------------------------------------------------------ tiers, from what a test uses and runs

TIERS = ("docker", "browser", "classrun", "grading", "service", "build", "training")
"""Why a test is not in the fast tier (pyproject.toml's markers say what each means); each test
is marked with every reason that applies, and with ``fast`` when none does."""
FAST = "fast"
CLASSRUN_TIMEOUT = 3600
"""pytest-timeout's limit for a test that uses a session class run: the run (several minutes
for the serving lab) may start in it, and a fixture's time counts toward the test's."""

_FIXTURE_TIERS = {"docker_engine": "docker", "graded_lab": "classrun", "lab_release": "build"}
_SOURCE_TIERS = [
    ("browser", re.compile(r"\bchromium\b|\bplaywright\b", re.I)),
    ("classrun", re.compile(r'"grade-all",')),
    ("grading", re.compile(r'"grade",|"check",[^\n]*"--out"')),
    # a team's service or commands, started for checks to run on (autograder.testing, the engine)
    ("service", re.compile(r"\b(serve_app|run_check|check_lab|parametrize_with_checks|grade)\(")),
    # the site, an nbgrader course, a student release (nbgrader generate_assignment for a notebook lab)
    ("build", re.compile(r'\bbuild_site\(|"generate_assignment"|"autograde"|"release",|\bwrite_release\(')),
    # a model fitted on the flight data: the reference's train command, the book's models
    ("training", re.compile(r'\.fit\(|"flightdelay\.train"')),
]


def _sources(func: Any, module: str, seen: set[Any], values: list[Any]) -> list[str]:
    """``func``'s source and that of every function of its own module it calls, transitively;
    the other module-level values they use go into ``values``."""
    func = inspect.unwrap(func)
    if func in seen or not inspect.isfunction(func):
        return []
    seen.add(func)
    try:
        found = [inspect.getsource(func)]
    except (OSError, TypeError):
        return []
    codes, names = [func.__code__], set()
    while codes:
        code = codes.pop()
        names |= set(code.co_names)
        codes += [c for c in code.co_consts if inspect.iscode(c)]
    for name in names:
        used = func.__globals__.get(name)
        if callable(used) and inspect.isfunction(inspect.unwrap(used)):  # functools.cache'd helpers too
            used = inspect.unwrap(used)
        if inspect.isfunction(used) and used.__module__ in (module, __name__):
            found += _sources(used, module, seen, values)
        elif used is not None:
            values.append(used)
    return found


def _is_a_check(value: Any) -> bool:
    """A lab check ready to run on a team's commands (autograder.testing.LabCheck), or a table of them."""
    from autograder.testing import LabCheck

    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return any(isinstance(v, LabCheck) for v in value)
    return isinstance(value, LabCheck)


def tiers_of(item: pytest.Item) -> set[str]:
    """The reasons ``item`` is not fast: the fixtures it uses (directly or through others) and
    what its code, its fixtures' code and the helpers they call run."""
    names = set(getattr(item, "fixturenames", ()))
    found = {tier for name, tier in _FIXTURE_TIERS.items() if name in names}
    seen: set[Any] = set()
    values: list[Any] = []
    module = getattr(getattr(item, "module", None), "__name__", "")
    funcs = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    for defs in (info.name2fixturedefs.values() if info else ()):
        funcs += [d.func for d in defs if d.func.__module__ in (module, __name__)]
    text = "\n".join(source for func in funcs if func is not None for source in _sources(func, module, seen, values))
    found |= {tier for tier, pattern in _SOURCE_TIERS if pattern.search(text)}
    if any(_is_a_check(value) for value in values):
        found.add("service")
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        found = tiers_of(item)
        for tier in (t for t in TIERS if t in found):
            item.add_marker(tier)
        if not found:
            item.add_marker(FAST)
        if "graded_lab" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(CLASSRUN_TIMEOUT))
    # The modules that read a class run go last, whole (their module fixtures are built once):
    # the runs have the rest of the session to finish in the background (_ClassRuns).
    last = {item.module.__name__ for item in items if labs_read(item)}  # type: ignore[attr-defined]
    items[:] = sorted(items, key=lambda item: getattr(getattr(item, "module", None), "__name__", "") in last)
