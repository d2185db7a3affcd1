"""The sandbox's parts on their own: which cgroup hierarchy gives which limit (v2, v1, none),
what of the kit team code may import, and what a report says where a protection is missing.

The attacks themselves are in test_sandbox_attacks.py; these cover the machines we cannot
grade on here (cgroup v2 with controllers, no cgroups at all, no root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ENGINE_FIXTURE, is_root, make_fixture_submission

from autograder.engine import cgroups
from autograder.engine.cgroups import Hierarchy, TeamCgroup, hierarchies, own_cgroup
from autograder.engine.jail import team_modules

V2_ONLY = "30 23 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
V1_AND_V2 = (
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
)


def test_mountinfo_v1_controllers_are_read_from_the_mount_options():
    found = hierarchies(V1_AND_V2)
    assert [(str(h.mount), h.version, sorted(h.controllers)) for h in found] == [
        ("/sys/fs/cgroup/memory", 1, ["memory"]),
        ("/sys/fs/cgroup/pids", 1, ["pids"]),
        ("/sys/fs/cgroup/cpu,cpuacct", 1, ["cpu"]),
        ("/sys/fs/cgroup/systemd", 1, []),
    ]


def test_mountinfo_v2_controllers_are_read_from_the_hierarchy(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    [h] = hierarchies(V2_ONLY.replace("/sys/fs/cgroup", str(tmp_path)))
    assert h.version == 2 and {"memory", "pids", "cpu"} <= h.controllers


def test_own_cgroup_follows_proc_self_cgroup():
    v2 = Hierarchy(Path("/sys/fs/cgroup"), 2, frozenset({"memory"}), "/")
    v1 = Hierarchy(Path("/sys/fs/cgroup/memory"), 1, frozenset({"memory"}), "/")
    text = "4:memory:/grading/box\n0::/user.slice/session-3.scope\n"
    assert own_cgroup(v2, text) == Path("/sys/fs/cgroup/user.slice/session-3.scope")
    assert own_cgroup(v1, text) == Path("/sys/fs/cgroup/memory/grading/box")


def test_on_a_v2_machine_every_limit_comes_from_v2(tmp_path, monkeypatch):
    """A fake cgroup v2 folder (plain files): the team group gets memory.max with no swap,
    pids.max and an equal cpu.weight, and the controllers are enabled for it."""
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    fake = Hierarchy(tmp_path, 2, frozenset({"cpu", "memory", "pids"}), "/")
    monkeypatch.setattr(cgroups, "hierarchies", lambda: [fake])
    monkeypatch.setattr(cgroups, "own_cgroup", lambda h: tmp_path)
    group = TeamCgroup.create("shipml-1-2-x", memory_bytes=512 << 20, pids=64)
    team = tmp_path / "shipml" / "shipml-1-2-x"
    assert group.dirs == [team]
    assert {c: how for c, (how, _) in group.where.items()} == {"memory": "v2", "pids": "v2", "cpu": "v2"}
    assert (team / "memory.max").read_text() == str(512 << 20) and (team / "memory.swap.max").read_text() == "0"
    assert (team / "pids.max").read_text() == "64" and (team / "cpu.weight").read_text() == "100"
    assert (tmp_path / "shipml" / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert group.describe() == "memory (cgroup v2), pids (cgroup v2), cpu (cgroup v2)"


def test_with_no_cgroups_the_report_says_the_limits_are_not_team_wide(tmp_path, monkeypatch):
    if not is_root():
        pytest.skip("the cgroup limits are the root runner's")
    from autograder.engine.sandbox import Sandbox
    from autograder.engine.spec import find_lab, load_submission

    monkeypatch.setattr(cgroups, "hierarchies", lambda: [])
    monkeypatch.setenv("SHIPML_WORKSPACE", str(tmp_path / "ws"))
    folder = make_fixture_submission(tmp_path / "class", "healthy")
    sandbox = Sandbox(load_submission(folder, find_lab(str(ENGINE_FIXTURE))), hidden=[])
    try:
        limits = next(line for line in sandbox.isolation if line.startswith("limits:"))
        assert "team-wide through cgroups: none" in limits
        assert "NOT team-wide (no cgroup controller): memory 4096 MiB, 256 processes, an equal CPU share" in limits
    finally:
        sandbox.close()


@pytest.mark.skipif(not is_root(), reason="checks the root runner's report against this machine's cgroups")
def test_the_report_names_each_team_wide_limit_and_where_it_came_from(tmp_path, monkeypatch):
    from autograder.engine.sandbox import Sandbox
    from autograder.engine.spec import find_lab, load_submission

    monkeypatch.setenv("SHIPML_WORKSPACE", str(tmp_path / "ws"))
    folder = make_fixture_submission(tmp_path / "class", "healthy")
    sandbox = Sandbox(load_submission(folder, find_lab(str(ENGINE_FIXTURE))), hidden=[])
    try:
        text = "\n".join(sandbox.isolation)
        offered = {c for h in hierarchies() for c in h.controllers}
        for controller, words in (("memory", "memory 4096 MiB ("), ("pids", "256 processes ("), ("cpu", "an equal CPU share (")):
            assert (words in text.split("NOT team-wide")[0]) == (controller in offered), (controller, text)
        assert "bubblewrap" in text and "a 1024 MiB tmpfs" in text
        assert oct(os.stat(sandbox.workspace).st_mode & 0o777) == "0o700"
        assert os.stat(sandbox.copy).st_uid == sandbox.uid and oct(os.stat(sandbox.copy).st_mode & 0o777) == "0o700"
    finally:
        sandbox.close()
    assert not sandbox.workspace.exists()


def test_without_root_the_report_says_plainly_what_is_not_isolated(tmp_path, monkeypatch):
    from autograder.engine import sandbox as sandbox_module
    from autograder.engine.spec import find_lab, load_submission

    monkeypatch.setattr(sandbox_module.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("SHIPML_WORKSPACE", str(tmp_path / "ws"))
    folder = make_fixture_submission(tmp_path / "class", "healthy")
    sandbox = sandbox_module.Sandbox(load_submission(folder, find_lab(str(ENGINE_FIXTURE))), hidden=[])
    try:
        text = "\n".join(sandbox.isolation)
        assert "NOT isolated (the grader is not root)" in text and "per process only" in text
        assert "a grader killed by SIGKILL leaves them running" in text
        assert sandbox.run("echo hello", timeout=10).output.strip() == "hello"
    finally:
        sandbox.close()


def test_team_code_may_import_the_data_loader_and_nothing_else_of_the_kit():
    names = {p.relative_to(p.parents[1]).as_posix() for p in team_modules()}
    assert {"autograder/__init__.py", "autograder/data.py", "autograder/errors.py"} <= names
    assert not [n for n in names if n.startswith(("autograder/engine", "autograder/checks", "autograder/integrations"))]


@pytest.mark.skipif(not is_root(), reason="the fallback is the root runner's")
def test_as_root_without_a_working_bubblewrap_teams_still_get_their_uid_and_the_report_says_what_is_missing(tmp_path, monkeypatch, request):
    from autograder.engine import sandbox as sandbox_module
    from autograder.engine.jail import bwrap_problem
    from autograder.engine.spec import find_lab, load_submission

    assert bwrap_problem() is None, "bubblewrap works on this machine (make system-deps)"
    monkeypatch.setattr(sandbox_module, "bwrap_problem", lambda: "bubblewrap cannot make its namespaces here: test")
    folder = make_fixture_submission(tmp_path / "class", "healthy")
    # Three hidden folders: one closed (0700, as the export's run_autograder leaves
    # /autograder/source), one open to every user, and one a user may pass through but not list
    # (0711), whose file a team that knows its name reads all the same. Under /var/tmp, which
    # every user may pass through (pytest's tmp_path is closed to others).
    base = Path(tempfile.mkdtemp(prefix="hidden-probe-", dir="/var/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(base))
    closed, open_, passable = base / "closed", base / "open", base / "passable"
    for hidden in (closed, open_, passable):
        hidden.mkdir()
        (hidden / "labels.csv").write_text("flight,late\n1,1\n")
    os.chmod(base, 0o755)
    os.chmod(closed, 0o700)
    os.chmod(open_, 0o755)
    os.chmod(passable, 0o711)
    monkeypatch.setenv("SHIPML_WORKSPACE", str(base / "ws"))
    sandbox = sandbox_module.Sandbox(load_submission(folder, find_lab(str(ENGINE_FIXTURE))), hidden=[closed, open_, passable])
    try:
        text = "\n".join(sandbox.isolation)
        assert "processes: NOT isolated (bubblewrap cannot make its namespaces here: test)" in text
        assert "NOT an allow-list view" in text and "team-wide through cgroups" in text
        assert sandbox.exposed() == [open_, passable]
        assert f"READABLE by the team's uid (it can read in {open_}, {passable})" in text
        # Where the grader's interpreter lies under a folder closed to other users (this machine's
        # venv: /root/.pyenv), the report says that every {python} command will fail.
        real = Path(os.path.realpath(sys.executable))
        closed_above = any(os.stat(folder).st_mode & 0o001 == 0 for folder in real.parents)
        assert ("is NOT executable by the team's uid" in text) == closed_above, text
        passed_through = sandbox.run(f"cat {passable}/labels.csv; ls {passable}", timeout=10)
        assert "flight,late" in passed_through.output and "Permission denied" in passed_through.output
        result = sandbox.run("id -u; pwd; touch made-here", timeout=10)
        assert result.output.split() == [str(sandbox.uid), str(sandbox.copy)], result.output
        assert os.stat(sandbox.copy / "made-here").st_uid == sandbox.uid
        # The file permissions are what keeps the closed folder from the team; the open one it reads.
        probe = sandbox.run(f"cat {closed}/labels.csv; echo; cat {open_}/labels.csv", timeout=10)
        assert "Permission denied" in probe.output and "flight,late" in probe.output, probe.output
        # The data loader resolves as under bubblewrap (a copy in the workspace, which the team
        # cannot change); the grader's own modules do not. (The system's python3: this
        # machine's venv lies under /root, closed to the team's uid; find_spec does not run the
        # modules, so pandas is not needed.)
        find = "/usr/bin/python3 -c 'import importlib.util as u; print(u.find_spec(\"{}\") and u.find_spec(\"{}\").origin)'"
        imports = sandbox.run(
            find.format("autograder.data", "autograder.data") + "; " + find.format("autograder.engine", "autograder.engine")
            + "; /usr/bin/python3 -c 'import importlib.util as u; open(u.find_spec(\"autograder.data\").origin, \"a\")' 2>&1 | tail -1",
            timeout=60,
        )
        lines = imports.output.strip().splitlines()
        assert lines[0] == str(sandbox.workspace / "kit" / "autograder" / "data.py"), imports.output
        assert lines[1] == "None", imports.output
        assert lines[2].startswith("PermissionError"), imports.output
    finally:
        sandbox.close()


@pytest.mark.skipif(not is_root(), reason="the CPU share is a cgroup limit of the root runner")
def test_a_team_with_many_busy_processes_gets_no_more_cpu_than_a_team_with_one(tmp_path, monkeypatch):
    """Two teams at once: eight busy processes against one. With a share per team, the one
    process gets about as much CPU as all eight together; without, about an eighth of it."""
    import threading

    from autograder.engine.sandbox import Sandbox
    from autograder.engine.spec import find_lab, load_submission

    if "cpu" not in {c for h in hierarchies() for c in h.controllers}:
        pytest.skip("no cpu controller on this machine")
    monkeypatch.setenv("SHIPML_WORKSPACE", str(tmp_path / "ws"))
    lab = find_lab(str(ENGINE_FIXTURE))
    boxes = [Sandbox(load_submission(make_fixture_submission(tmp_path / name, "healthy"), lab), hidden=[]) for name in ("many", "one")]
    # One write per process (print would write the number and the newline apart, and eight
    # processes sharing a pipe could interleave them).
    burn = "{python} -c 'import sys, time\nend = time.monotonic() + 4\nwhile time.monotonic() < end: pass\nsys.stdout.write(str(time.process_time()) + chr(10))'"
    results = {}
    try:
        # Each in a session of its own, so the kernel's per-session fairness (autogroup) does
        # not do the cgroup's job.
        many = boxes[0].render(" & ".join([f"setsid -w {burn}"] * 8) + " & wait")
        one = boxes[1].render(burn)
        threads = [threading.Thread(target=lambda k=k, b=b, c=c: results.__setitem__(k, b.run(c, 30))) for k, b, c in (("many", boxes[0], many), ("one", boxes[1], one))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for box in boxes:
            box.close()
    many_cpu = sum(float(x) for x in results["many"].output.split())
    one_cpu = float(results["one"].output.split()[0])
    assert one_cpu > 0.5 * many_cpu, f"one process {one_cpu:.2f} s of CPU, eight processes {many_cpu:.2f} s together"


@pytest.mark.skipif(not is_root(), reason="a team's own uid is the root runner's")
def test_without_bubblewrap_or_cgroups_a_process_that_left_its_session_dies_when_grading_ends(tmp_path, monkeypatch):
    """A container with neither bubblewrap's namespaces nor a writable /sys/fs/cgroup: nothing
    holds a team's daemon but its uid. Closing the sandbox kills every process of that uid."""
    from autograder.engine import sandbox as sandbox_module
    from autograder.engine.cgroups import uid_of
    from autograder.engine.spec import find_lab, load_submission

    monkeypatch.setattr(sandbox_module, "bwrap_problem", lambda: "bubblewrap cannot make its namespaces here: test")
    monkeypatch.setattr(sandbox_module.TeamCgroup, "create", classmethod(lambda cls, name, **kw: cls(name)))
    monkeypatch.setenv("SHIPML_WORKSPACE", str(tmp_path / "ws"))
    folder = make_fixture_submission(tmp_path / "class", "healthy")
    sandbox = sandbox_module.Sandbox(load_submission(folder, find_lab(str(ENGINE_FIXTURE))), hidden=[])
    try:
        assert "team-wide through cgroups: none" in "\n".join(sandbox.isolation)
        sandbox.run("setsid sleep 300 < /dev/null > /dev/null 2>&1 &", timeout=10)
        time.sleep(0.3)
        left = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if uid_of(pid) == sandbox.uid]
        assert left, "the daemon outlived its command (the case this test is about)"
    finally:
        sandbox.close()
    # Dead is enough: a killed daemon may stay a zombie until its reaper collects it.
    from autograder.engine.process import living_pids_of

    assert not [pid for pid in left if pid in living_pids_of(sandbox.uid)], "a process of the team's uid outlived grading"


@pytest.mark.skipif(not is_root(), reason="a team's own uid is the root runner's")
def test_sweep_kills_what_runs_as_a_dead_graders_team_uid(tmp_path):
    """A grader SIGKILLed where no cgroup held its teams: its workspace names its pid, and so
    the team's uid; the next grader's sweep kills what still runs as that uid."""
    from autograder.engine.cgroups import uid_of
    from autograder.engine.workspace import TEAM_UID_BASE, sweep

    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid no process has now: the dead grader's
    uid = TEAM_UID_BASE + gone.pid
    (tmp_path / f"shipml-{gone.pid}-1-abcd").mkdir()
    daemon = subprocess.Popen(["sleep", "300"], user=uid, group=uid, extra_groups=[], start_new_session=True)
    try:
        assert uid_of(daemon.pid) == uid
        done = sweep(tmp_path)
        daemon.wait(timeout=5)
        assert daemon.returncode == -9 and "removed 1 workspace(s)" in done
    finally:
        daemon.kill()


@pytest.mark.skipif(not is_root(), reason="taking a team's uid needs root")
def test_kill_uid_says_true_exactly_when_no_process_of_the_uid_is_left():
    """Linux answers 0 to kill(-1) whenever any other process exists, even when the signal
    reached none; kill_uid must not read that as "some are left" (it used to wait out its whole
    two seconds and say False on every grading) nor a living process as "none left"."""
    from autograder.engine.process import kill_uid, living_pids_of

    uid = 250_000 + os.getpid() % 10_000
    assert living_pids_of(uid) == [] and kill_uid(uid) is True
    daemon = subprocess.Popen(["sleep", "300"], user=uid, group=uid, extra_groups=[], start_new_session=True)
    try:
        assert living_pids_of(uid) == [daemon.pid]
        assert kill_uid(uid) is True
        assert daemon.wait(timeout=5) == -9
        assert living_pids_of(uid) == []
    finally:
        daemon.kill()


@pytest.mark.skipif(not is_root(), reason="the team's own uid is the root runner's")
def test_a_team_racing_the_input_handover_cannot_make_root_chown_its_target(tmp_path, monkeypatch):
    """A check hands a folder to the team (fresh_service(files={"data": folder})). While the
    harness hands it over, the team's running service swaps every subfolder it can reach in the
    exchange folders for a symlink to a root-owned folder. Root must never chown through it."""
    from autograder.engine.sandbox import Sandbox
    from autograder.engine.spec import find_lab, load_submission

    monkeypatch.setenv("SHIPML_WORKSPACE", str(tmp_path / "ws"))
    target = Path(tempfile.mkdtemp(prefix="handover-target-", dir="/var/tmp"))
    (target / "precious").write_text("root's")
    os.chmod(target, 0o755)
    folder = make_fixture_submission(tmp_path / "class", "healthy")
    sandbox = Sandbox(load_submission(folder, find_lab(str(ENGINE_FIXTURE))), hidden=[])
    swap = (f"while true; do for d in {sandbox.io_root}/io-*/data; do "
            f"[ -d \"$d\" ] && [ ! -L \"$d\" ] && mv \"$d\" \"$d.moved\" 2>/dev/null && ln -s {target} \"$d\" 2>/dev/null; done; done")
    try:
        sandbox.spawn(swap)
        source = tmp_path / "inputs"
        source.mkdir()
        for i in range(20):
            (source / f"f{i}.csv").write_text("a,b\n")
        for _ in range(30):
            io = sandbox.exchange_dir()
            shutil.copytree(source, io / "data")
            sandbox.run("true", timeout=10)  # starting a command hands the folder over
        assert os.stat(target / "precious").st_uid == 0 and os.stat(target).st_uid == 0
        handed = [p for p in sandbox.io_root.glob("io-*/data*")]
        assert handed, "the team reached the exchange folders (the case this test is about)"
        assert all(os.lstat(p).st_uid == 0 for p in handed if not p.is_symlink()), "inputs stay root's, readable"
    finally:
        sandbox.close()
        shutil.rmtree(target)


SNOOP = r'''
import os, pathlib, sys
here = pathlib.Path.cwd()
secret = here / "steps.py"
found = []
if secret.exists():  # the run with the instructor's module swapped in: hide it for later
    code = secret.read_bytes()
    for target in (here / "stash.py", here.parent.parent / "submission" / "stash.py",
                   here.parent.parent / "state" / "stash.py", pathlib.Path(sys.argv[1]) / "stash.py",
                   pathlib.Path("/tmp/stash.py"), pathlib.Path("/var/tmp/stash.py"), pathlib.Path("/dev/shm/stash.py")):
        try:
            target.write_bytes(code)
            found.append(f"wrote {target}")
        except OSError:
            pass
    for root in sys.argv[2:]:  # the kit's instructor-only folders, by path
        for dirpath, _, files in os.walk(root):
            for name in files:
                try:
                    open(os.path.join(dirpath, name), "rb").read(1)
                    found.append(f"read {dirpath}/{name}")
                except OSError:
                    pass
else:  # a later, ordinary run: look for anything the swapped run left
    for target in (here / "stash.py", pathlib.Path(sys.argv[1]) / "stash.py", pathlib.Path("/tmp/stash.py"),
                   pathlib.Path("/var/tmp/stash.py"), pathlib.Path("/dev/shm/stash.py")):
        if target.exists():
            found.append(f"STASH FOUND {target}")
print("\n".join(found))
'''


@pytest.mark.skipif(not is_root(), reason="bubblewrap's view needs root (CI runs as root)")
def test_a_run_with_a_swapped_module_cannot_keep_it_or_read_the_instructors_folders(tmp_path, monkeypatch):
    """The pipeline lab swaps an instructor's module into a team's package while the team's own
    tests run (``ctx.run(..., replace=...)``). Attacked from the team's side under bubblewrap: the
    swapped run copies the module to every place it can name (its folder, the real copy and
    state by path, its {state}, the shared tmp folders) and reads the kit's instructor-only
    folders; a later ordinary run then looks for the copies. Nothing is read, and nothing the
    swapped run wrote is there to find."""
    from autograder.engine.jail import bwrap_problem
    from autograder.engine.runner import TeamRunner
    from autograder.engine.sandbox import Sandbox
    from autograder.engine.spec import find_lab, load_submission
    from autograder.paths import LABS_DIR

    if bwrap_problem() is not None:
        pytest.skip(f"bubblewrap cannot run here: {bwrap_problem()}")
    monkeypatch.setenv("SHIPML_WORKSPACE", str(tmp_path / "ws"))
    folder = make_fixture_submission(tmp_path / "class", "healthy")
    (folder / "snoop.py").write_text(SNOOP)
    instructor = [str(p) for p in LABS_DIR.glob("*/hidden")] + [str(LABS_DIR / "reference"), str(LABS_DIR)]
    lab = find_lab(str(ENGINE_FIXTURE))
    submission = load_submission(folder, lab)
    sandbox = Sandbox(submission, hidden=[LABS_DIR])
    runner = TeamRunner(sandbox, {"snoop": "{python} snoop.py {state} " + " ".join(instructor)}, files_root=folder)
    try:
        swapped = runner.run("snoop", inputs={}, outputs=[], timeout=60, replace={"steps.py": b"SECRET = 'chaff'\n"})
        assert swapped.ok, swapped.output
        wrote = swapped.output.split()
        assert "read" not in wrote, f"the swapped run read the instructor's files: {swapped.output}"
        assert any(line.startswith("wrote") for line in swapped.output.splitlines()), "the attack could write nowhere (nothing proven)"
        later = runner.run("snoop", inputs={}, outputs=[], timeout=60)
        assert later.ok, later.output
        assert "STASH FOUND" not in later.output, later.output
        assert not list(sandbox.copy.rglob("stash.py")) and not list(sandbox.state_dir.rglob("stash.py"))
        assert not list(sandbox.workspace.glob("scratch-*")), "the throwaway copy was not removed"
    finally:
        runner.close()
        sandbox.close()
