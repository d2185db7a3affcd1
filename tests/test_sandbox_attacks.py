"""The attack suite: hostile submissions graded next to a victim team, as a class run grades them.

Each attack is one submission (its hostile code is in ``fixtures/attacks``) graded with the small
engine-fixture lab under ``shipml grade-all --jobs 2`` next to a healthy victim team. Every test
asserts the same four things:

- contained: the attack got nothing, seen from the attacker's side (its script exits 1 on any
  success, so its ``tests_pass`` check fails) and from the host's (files, memory, processes);
- grader alive: the attacker's own grading finished and wrote its results;
- other grade intact: the victim still scores 10 of 10, in its results and in grades.csv;
- no leftovers: no process of a team uid whose grader is gone, no workspace, mount or cgroup.
  (A team uid is 200000 + its grader's pid: on a machine whose real users have uids that high,
  run this suite elsewhere. A grader that another test run SIGKILLs at the same moment may show
  up here as a leftover until that run's sweep: run one suite at a time, as CI does.)

Set ``SHIPML_ATTACK_TABLE`` to a file to collect one JSON line per attack (the before/after
table of issue 11). Workspaces go to a folder of this run's own (``SHIPML_WORKSPACE``), so that
other graders on the machine never count as our leftovers.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ENGINE_FIXTURE, REPO, is_root, shipml

from autograder.engine.cgroups import uid_of

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not is_root(), reason="the sandbox isolates only as root; CI runs as root"),
]

ATTACKS = Path(__file__).parent / "fixtures" / "attacks"
TEAM_UID_BASE = 200000


@dataclass
class Row:
    attack: str
    contained: bool = False
    grader_alive: bool = False
    other_intact: bool = False
    leftovers: list[str] = field(default_factory=list)
    evidence: str = ""

    def record(self) -> None:
        table = os.environ.get("SHIPML_ATTACK_TABLE")
        if table:
            with open(table, "a") as fh:
                fh.write(json.dumps(self.__dict__) + "\n")

    def check(self) -> None:
        self.record()
        assert self.contained, f"{self.attack}: not contained: {self.evidence}"
        assert self.grader_alive, f"{self.attack}: the grader died"
        assert self.other_intact, f"{self.attack}: the victim's grade changed"
        assert not self.leftovers, f"{self.attack}: left behind: {self.leftovers}"


def _team(root: Path, name: str, *, serve: str, test: str, startup: float = 10) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    shutil.copy(ENGINE_FIXTURE / "server.py", folder)
    for script in ATTACKS.glob("*.py"):
        shutil.copy(script, folder)
    (folder / "submission.toml").write_text(
        f"""[team]
name = "{name}"
members = [{{ id = "{name}-student" }}]

[commands]
serve = '''{serve}'''
test = '''{test}'''

[service]
health_path = "/health"
startup_timeout = {startup}
"""
    )
    return folder


HEALTHY = "{python} server.py --port {port} --mode healthy"
PASSING = "{python} -c 'print(\"tests ok\")'"


def _start_time(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def orphaned_team_processes() -> list[str]:
    """Processes of a team uid (200000 + its grader's pid) whose grader is gone."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        uid = uid_of(int(entry))
        if uid is None or uid < TEAM_UID_BASE:
            continue
        mine, grader = _start_time(int(entry)), _start_time(uid - TEAM_UID_BASE)
        if mine is not None and (grader is None or grader > mine):
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")[:100].decode(errors="replace")
            found.append(f"pid {entry} uid {uid}: {cmd}")
    return found


def _stale_groups() -> list[str]:
    found = []
    for path in glob.glob("/sys/fs/cgroup/**/shipml/shipml-*", recursive=True):
        parts = Path(path).name.split("-")
        if len(parts) > 2 and parts[1].isdigit() and str(_start_time(int(parts[1]))) != parts[2]:
            found.append(path)
    return found


def leftovers(base: Path, tokens: tuple[str, ...] = ()) -> list[str]:
    found = orphaned_team_processes()
    with contextlib.suppress(FileNotFoundError):
        found += [f"workspace {p}" for p in base.iterdir()]
    found += [f"mount {line.split()[4]}" for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(base) in line]
    found += [f"cgroup {p}" for p in _stale_groups()]
    for token in tokens:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if token.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                        found.append(f"process {entry} with {token}")
    return found


@dataclass
class ClassRun:
    root: Path
    out: Path
    base: Path
    proc: subprocess.CompletedProcess[str] | None = None

    def result(self, team: str, instructor: bool = True) -> dict:
        path = self.out / team / ("instructor/results.json" if instructor else "results.json")
        return json.loads(path.read_text())

    def check(self, team: str, check_id: str) -> dict:
        return next(c for c in self.result(team)["extra_data"]["shipml"]["checks"] if c["id"] == check_id)

    def grader_alive(self, team: str = "attacker") -> bool:
        if self.proc is None or self.proc.returncode != 0:
            return False
        try:
            notes = " ".join(self.result(team)["extra_data"]["shipml"]["notes"])
        except (OSError, KeyError, ValueError):
            return False
        return "could not grade" not in notes and "Grading stopped" not in notes

    def victim_intact(self) -> bool:
        try:
            scores = [self.result("victim")["score"], self.result("victim", instructor=False)["score"]]
            rows = (self.out / "grades.csv").read_text().splitlines()
        except (OSError, ValueError, KeyError):
            return False
        victim_rows = [r.split(",") for r in rows if r.startswith("victim,")]
        return scores == [10.0, 10.0] and len(victim_rows) == 1 and float(victim_rows[0][3]) == 10.0


@pytest.fixture
def classroom(tmp_path, monkeypatch):
    """A class folder with a victim team, and a workspace folder of this test's own."""
    base = Path("/var/tmp") / f"shipml-attacks-{uuid.uuid4().hex[:8]}"
    base.mkdir(mode=0o755)
    monkeypatch.setenv("SHIPML_WORKSPACE", str(base))
    root = tmp_path / "class"
    victim = _team(root, "victim", serve=HEALTHY, test=PASSING)
    (victim / "victim_secret.txt").write_text(f"victim secret {uuid.uuid4().hex}\n")
    run = ClassRun(root, tmp_path / "out", base)
    yield run
    # Never leave anything behind, whatever the test found (it has recorded it already): the
    # code before issue 11 left team processes and workspaces, and this suite also runs on it.
    for line in orphaned_team_processes():
        pid = line.split()[1].rstrip(":")
        with contextlib.suppress(OSError):
            # Only this test's: its working folder or command line names this test's folders.
            where = os.readlink(f"/proc/{pid}/cwd") + Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
            if str(base) in where or str(tmp_path) in where or "shipml-daemon-" in where or "shipml-sigkill-" in where:
                os.kill(int(pid), signal.SIGKILL)
    for entry in base.iterdir() if base.exists() else []:
        subprocess.run(["umount", "-l", str(entry)], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)
    for shared in (Path("/var/tmp"), Path("/dev/shm")):  # files a team wrote there (before the fix)
        for entry in shared.iterdir():
            with contextlib.suppress(OSError):
                if entry.is_file() and entry.stat().st_uid >= TEAM_UID_BASE and _start_time(entry.stat().st_uid - TEAM_UID_BASE) is None:
                    entry.unlink()


def slow_victim(run: ClassRun) -> None:
    """The victim's tests take a few seconds, so that its workspace and grader exist while the
    attacker, graded at the same time, looks for them."""
    toml = run.root / "victim" / "submission.toml"
    toml.write_text(toml.read_text().replace(PASSING, "sleep 5; echo tests ok"))


def grade_class(run: ClassRun, *extra: str, timeout: float = 240) -> ClassRun:
    run.proc = shipml("grade-all", str(ENGINE_FIXTURE), str(run.root), "--out", str(run.out), "--jobs", "2", *extra, timeout=timeout)
    return run


def attacker_side(run: ClassRun, killed_is_contained: bool = False) -> tuple[bool, str]:
    """The attacker's verdict (its script ran to the end with every attempt blocked, so its
    ``tests_pass`` check passed) and its last output lines. Where the kernel may end the attack
    first (the OOM killer, a killed shell), being killed with no success reported counts too."""
    check = run.check("attacker", "tests_pass")
    message = check["message"][-600:]
    killed = "was killed by" in message and "ESCAPED" not in message
    return check["score"] == 5 or (killed_is_contained and killed), message


def simple_attack(
    run: ClassRun, name: str, test: str, *, serve: str = HEALTHY, tokens: tuple[str, ...] = (), killed_is_contained: bool = False
) -> Row:
    _team(run.root, "attacker", serve=serve, test=test)
    grade_class(run)
    row = Row(name)
    row.grader_alive = run.grader_alive()
    row.other_intact = run.victim_intact()
    if row.grader_alive:
        row.contained, row.evidence = attacker_side(run, killed_is_contained)
    row.leftovers = leftovers(run.base, tokens)
    return row


def test_reading_hidden_data(classroom):
    simple_attack(classroom, "reading hidden data", "{python} hidden_data.py").check()


def test_reading_another_teams_copy(classroom):
    slow_victim(classroom)
    simple_attack(classroom, "reading another team's copy", "sleep 2; {python} other_team.py").check()


def test_writing_outside_the_workspace(classroom):
    token = f"shipml-attack-{uuid.uuid4().hex[:8]}"
    row = simple_attack(classroom, "writing outside the workspace", f"{{python}} write_outside.py {token}")
    landed = [p for p in (Path("/var/tmp") / token, Path("/tmp") / token, Path("/dev/shm") / token, REPO / token,
                          Path("/root") / token, Path("/etc") / token, classroom.base / token) if p.exists()]
    landed += [str(p) for p in classroom.root.parent.rglob(token)]
    for path in landed:
        Path(path).unlink(missing_ok=True)
    row.contained = row.grader_alive and not landed
    row.evidence = f"landed on the host: {landed}"
    row.check()


def _harness_wrote(run: ClassRun, team: str) -> bool:
    """Both results of ``team`` are the harness's: its three checks, a score out of 10."""
    try:
        results = [run.result(team), run.result(team, instructor=False)]
    except (OSError, ValueError):
        return False
    return all(r["score"] <= 10 and len(r["tests"]) >= 2 and "extra_data" in r for r in results)


def test_forging_results(classroom):
    # A write may land in the team's private /tmp (the output folder of this test lies under
    # /tmp), so the verdict is the host's: the results are the harness's.
    out = classroom.out / "attacker"
    row = simple_attack(classroom, "forging results", f"{{python}} forge_results.py {out}/results.json {out}/instructor/results.json")
    row.contained = row.grader_alive and _harness_wrote(classroom, "attacker")
    row.check()


def test_tampering_with_the_gradebook(classroom):
    row = simple_attack(classroom, "the gradebook", f"{{python}} gradebook.py {classroom.out}")
    grades = (classroom.out / "grades.csv").read_text() if (classroom.out / "grades.csv").exists() else "1000"
    row.contained = row.grader_alive and "1000" not in grades and _harness_wrote(classroom, "victim")
    row.check()


def test_fork_bomb(classroom):
    simple_attack(classroom, "fork bomb", "{python} fork_bomb.py").check()


def test_memory_split_over_many_processes(classroom):
    simple_attack(classroom, "memory split over many processes", "{python} memory_split.py", killed_is_contained=True).check()


def test_one_large_allocation(classroom):
    simple_attack(classroom, "one large allocation", "{python} big_alloc.py").check()


def test_output_flood(classroom):
    row = simple_attack(classroom, "output floods", "{python} output_flood.py", serve="{python} server.py --port {port} --mode flood")
    sizes = [p.stat().st_size for p in (classroom.out / "attacker").rglob("*") if p.is_file()]
    row.contained = row.grader_alive and max(sizes) < 300_000 and classroom.check("attacker", "requests_answered")["score"] == 3
    row.evidence = f"largest report file {max(sizes)} bytes"
    row.check()


def test_many_small_files_and_a_full_disk(classroom):
    simple_attack(classroom, "many small files", "{python} many_files.py").check()


def test_daemon(classroom):
    token = f"shipml-daemon-{uuid.uuid4().hex[:8]}"
    row = simple_attack(classroom, "a daemon", f"{{python}} daemon.py {token}; echo done", tokens=(token,))
    row.contained = row.grader_alive and not any(token in item for item in row.leftovers)
    row.check()


def test_killing_the_parent(classroom):
    # Killing its own shell ends the command (self-harm, not an escape): killed counts as held.
    simple_attack(classroom, "killing the parent", "{python} kill_parent.py; sleep 1; echo survived", killed_is_contained=True).check()


def _host_listener() -> tuple[socket.socket, threading.Event]:
    """A listener on the host's loopback (this test process's namespace, not the grader's)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    reached = threading.Event()

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                reached.set()
                conn.sendall(b"host-listener\n")
                conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return server, reached


def test_port_squatting(classroom):
    server, reached = _host_listener()
    try:
        port = server.getsockname()[1]
        squat = f"{{python}} port_squat.py {port} && {{python}} server.py --port {{port}} --mode healthy"
        row = simple_attack(classroom, "port squatting", f"{{python}} port_squat.py {port}", serve=squat)
        row.contained = row.contained and not reached.is_set() and classroom.check("attacker", "service_starts")["score"] == 2
    finally:
        server.close()
    row.check()


def test_network_egress_without_a_packet_leaving_the_machine(classroom):
    server, reached = _host_listener()
    try:
        row = simple_attack(classroom, "network egress", f"{{python}} network.py {server.getsockname()[1]}")
        row.contained = row.contained and not reached.is_set()
    finally:
        server.close()
    row.check()


def test_proc_snooping(classroom):
    slow_victim(classroom)
    secrets = classroom.root.parent / "secrets.txt"
    secrets.write_text(f"{classroom.out}\n{classroom.root}/victim\n")
    _team(classroom.root, "attacker", serve=HEALTHY, test="sleep 1; {python} proc_snoop.py")
    shutil.copy(secrets, classroom.root / "attacker" / "secrets.txt")
    shutil.rmtree(classroom.root / "attacker" / "__pycache__", ignore_errors=True)
    grade_class(classroom)
    row = Row("/proc snooping")
    row.grader_alive, row.other_intact = classroom.grader_alive(), classroom.victim_intact()
    if row.grader_alive:
        row.contained, row.evidence = attacker_side(classroom)
    row.leftovers = leftovers(classroom.base)
    row.check()


def test_slow_service(classroom):
    # Slow to start (5 s of its 10), then every request from the third on hangs.
    slow = "sleep 5; {python} server.py --port {port} --mode hang"
    started = time.monotonic()
    row = simple_attack(classroom, "a slow service", PASSING, serve=slow)
    took = time.monotonic() - started
    if row.grader_alive:
        checks = {c: classroom.check("attacker", c)["score"] for c in ("service_starts", "requests_answered", "tests_pass")}
        row.contained = took < 90 and checks == {"service_starts": 2, "requests_answered": 0, "tests_pass": 5}
        row.evidence = f"{took:.0f} s, scores {checks}"
    row.check()


def test_detecting_the_grader_through_its_environment(classroom):
    _team(classroom.root, "attacker", serve="{python} env_dump.py {port}", test=PASSING)
    grade_class(classroom)
    check = shipml("check", str(ENGINE_FIXTURE), str(classroom.root / "attacker"), "--out", str(classroom.out / "self-check"), "--quiet")
    row = Row("detecting the grader through its environment")
    row.grader_alive = classroom.grader_alive() and check.returncode == 0
    row.other_intact = classroom.victim_intact()

    def seen(out: Path) -> list[str]:
        result = json.loads((out / "results.json").read_text())
        message = next(c for c in result["extra_data"]["shipml"]["checks"] if c["id"] == "service_starts")["message"]
        lines = [line for line in message.splitlines() if line.startswith(("ENV ", "CWD ", "UID "))]
        # The workspace's name and the uid differ from run to run, under `check` as under `grade`.
        return sorted(
            " ".join("WS" if "/shipml-" in w else w for w in line.replace(":", " ").replace("/", " /").split())
            for line in lines
            if not line.startswith("UID ")
        )

    if row.grader_alive:
        graded, checked = seen(classroom.out / "attacker" / "instructor"), seen(classroom.out / "self-check")
        names = [line.split("=")[0] for line in graded if line.startswith("ENV")]
        telltale = [n for n in names if any(w in n.upper() for w in ("SHIPML", "GRADE", "SANDBOX", "AUTOGRADER"))]
        row.contained = bool(graded) and graded == checked and not telltale
        row.evidence = f"telltale variables {telltale}; same under check and grade: {graded == checked}"
    row.leftovers = leftovers(classroom.base)
    row.check()


def test_grader_sigkilled_mid_check(classroom):
    """SIGKILL the attacker's `shipml grade` while its service is up: within 2 s no process of
    its team's uid is left, and the class run goes on (its end-of-run sweep removes the rest)."""
    token = f"shipml-sigkill-{uuid.uuid4().hex[:8]}"
    serve = f"{{python}} daemon.py {token} && {{python}} server.py --port {{port}} --mode hang"
    _team(classroom.root, "attacker", serve=serve, test="sleep 30")
    argv = [sys.executable, "-m", "autograder", "grade-all", str(ENGINE_FIXTURE), str(classroom.root), "--out", str(classroom.out), "--jobs", "2"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    row = Row("the grader SIGKILLed mid-check")
    uid, deadline = None, time.monotonic() + 60
    while time.monotonic() < deadline and uid is None:
        for entry in os.listdir("/proc"):
            with contextlib.suppress(OSError):
                # The daemon itself, not bwrap (root), whose command line holds the token too.
                if entry.isdigit() and token.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found = uid_of(int(entry))
                    uid = found if found is not None and found >= TEAM_UID_BASE else uid
        time.sleep(0.1)
    if uid is not None:
        grader = uid - TEAM_UID_BASE
        time.sleep(1.0)  # mid-check: the requests check is waiting on the hanging service
        os.kill(grader, signal.SIGKILL)
        killed = time.monotonic()
        while time.monotonic() - killed < 2.0 and [e for e in os.listdir("/proc") if e.isdigit() and uid_of(int(e)) == uid]:
            time.sleep(0.05)
        alive = [e for e in os.listdir("/proc") if e.isdigit() and uid_of(int(e)) == uid]
        row.contained = not alive
        row.evidence = f"{len(alive)} process(es) of uid {uid} alive 2 s after the SIGKILL"
    else:
        row.evidence = "the attacker's daemon never started"
    stdout, stderr = proc.communicate(timeout=240)
    classroom.proc = subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
    row.grader_alive = proc.returncode == 0  # the class run survived the death of one grader
    row.other_intact = classroom.victim_intact()
    row.leftovers = leftovers(classroom.base, (token,))
    row.check()


def test_symlinked_outputs(tmp_path, monkeypatch):
    """A command replaces its output with a symlink (to a file, through a folder), a FIFO or a
    hard link; the harness reads none of them, and never blocks."""
    from autograder.engine.sandbox import Sandbox
    from autograder.engine.spec import find_lab, load_submission

    folder = _team(tmp_path / "class", "attacker", serve=HEALTHY, test=PASSING)
    submission = load_submission(folder, find_lab(str(ENGINE_FIXTURE)))
    base = Path("/var/tmp") / f"shipml-attacks-{uuid.uuid4().hex[:8]}"
    base.mkdir()
    monkeypatch.setenv("SHIPML_WORKSPACE", str(base))
    try:
        sandbox = Sandbox(submission, hidden=[])
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    row = Row("symlinked outputs")
    try:
        tricks = {
            "file": "ln -s /etc/shadow {out}",
            "folder": "mkdir -p d && ln -s /etc d/x && rm -rf {dir} && ln -s $PWD/d/x {dir}; true",
            "fifo": "mkfifo {out}",
            "hardlink": "ln /etc/shadow {out} || ln /etc/passwd {out} || true",
            "relative": "ln -s ../../../../../../etc/shadow {out}",
        }
        read = {}
        for name, trick in tricks.items():
            io = sandbox.exchange_dir()
            out = io / "shadow"
            result = sandbox.run(trick.format(out=out, dir=io), timeout=20)
            started = time.monotonic()
            content = sandbox.read_output(io / "shadow")
            read[name] = (content, result.output.strip()[:100], time.monotonic() - started)
        row.contained = all(content is None and took < 1 for content, _, took in read.values())
        row.grader_alive = True
        row.other_intact = True  # no other team in this one: it runs the harness's own reader
        row.evidence = str({k: (v[0][:20] if v[0] else None, v[1]) for k, v in read.items()})
    finally:
        sandbox.close()
    row.leftovers = leftovers(base)
    shutil.rmtree(base, ignore_errors=True)
    row.check()
