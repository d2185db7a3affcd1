"""The engine on tiny fixture submissions: each misbehaviour gets the right result and message,
and nothing is left running afterwards."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ENGINE_FIXTURE, is_root, shipml

from autograder.engine.results import read_results

pytestmark = pytest.mark.slow


def grade(folder: Path, out: Path, *extra: str) -> dict[str, object]:
    shipml("grade", str(ENGINE_FIXTURE), str(folder), "--out", str(out), "--quiet", *extra, check=True, timeout=180)
    return {c.id: c for c in read_results(out / "instructor" / "results.json").checks}


def leftover(token: str) -> list[str]:
    """Processes whose command line carries ``token`` (read from /proc, not via a shell)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if token in cmdline:
                found.append(f"{pid}: {cmdline}")
    return found


def test_healthy_service_gets_full_marks(fixture_submission, tmp_path):
    checks = grade(fixture_submission("healthy"), tmp_path / "out")
    assert {k: c.score for k, c in checks.items()} == {"service_starts": 2, "requests_answered": 3, "tests_pass": 5}
    assert "healthy in" in checks["service_starts"].message


def test_never_healthy_says_why_and_shows_the_log(fixture_submission, tmp_path):
    checks = grade(fixture_submission("never_healthy", startup=3), tmp_path / "out")
    msg = checks["service_starts"].message
    assert checks["service_starts"].score == 0 and checks["requests_answered"].score == 0
    assert "did not become healthy within 3 s" in msg and "/health answered 503" in msg
    assert "listening on" in msg, "the log tail is shown"
    assert checks["tests_pass"].score == 5, "checks that do not need the service keep their points"


def test_crash_mid_check_names_the_request_and_the_exit(fixture_submission, tmp_path):
    checks = grade(fixture_submission("crash"), tmp_path / "out")
    msg = checks["requests_answered"].message
    assert checks["requests_answered"].score == 0
    assert "request 6 of 20" in msg and "died (exit code 3)" in msg
    assert checks["service_starts"].score == 2


def test_hanging_request_fails_within_the_limit(fixture_submission, tmp_path):
    started = time.monotonic()
    checks = grade(fixture_submission("hang"), tmp_path / "out")
    assert checks["requests_answered"].score == 0
    assert "request 3 of 20" in checks["requests_answered"].message and "got no answer" in checks["requests_answered"].message
    assert time.monotonic() - started < 60


def test_flood_of_output_is_bounded(fixture_submission, tmp_path):
    checks = grade(fixture_submission("flood"), tmp_path / "out")
    assert checks["tests_pass"].score == 5 and checks["requests_answered"].score == 3
    size = (tmp_path / "out" / "instructor" / "results.json").stat().st_size
    assert size < 200_000, "a 200 MB flood must not reach the results"


def test_daemonised_child_does_not_outlive_grading(fixture_submission, tmp_path, monkeypatch):
    token = f"shipml-daemon-{os.getpid()}-{time.time_ns()}"
    folder = fixture_submission("daemon")
    # The token reaches the daemon through the sandbox's environment: a marker we can look for.
    toml = folder / "submission.toml"
    toml.write_text(toml.read_text().replace("{python} server.py", f"FIXTURE_TOKEN={token} {{python}} server.py"))
    checks = grade(folder, tmp_path / "out")
    assert checks["service_starts"].score == 2
    assert leftover(token) == []


@pytest.mark.skipif(not is_root(), reason="masking hidden data needs root (namespaces); CI runs as root")
def test_submission_cannot_read_hidden_data_write_its_grade_or_see_the_network(fixture_submission, tmp_path):
    out = tmp_path / "out"
    target = out / "results.json"
    checks = grade(fixture_submission("steal", test_args=f"{target} {out}/instructor/results.json"), out)
    assert checks["tests_pass"].score == 5, checks["tests_pass"].message
    data = json.loads(target.read_text())
    assert data["score"] != 1000 and "tests" in data


def test_grade_all_resumes_after_sigkill(tmp_path):
    from conftest import make_fixture_submission

    root = tmp_path / "class"
    for i in range(6):
        folder = make_fixture_submission(root, "healthy")
        folder.rename(root / f"team{i:02d}")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "autograder", "grade-all", str(ENGINE_FIXTURE), str(root), "--out", str(out), "--jobs", "2"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("*/results.json"))) < 2:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    assert 2 <= len(done_before) < 6, "the kill landed mid-run"
    for path in out.rglob("*.json"):
        json.loads(path.read_text())  # no torn file
    result = shipml("grade-all", str(ENGINE_FIXTURE), str(root), "--out", str(out), "--jobs", "2", timeout=300)
    assert result.returncode == 0, result.stderr
    after = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    assert set(after) == {f"team{i:02d}" for i in range(6)}
    assert all(after[name] == mtime for name, mtime in done_before.items()), "graded submissions are not graded again"
    rows = (out / "grades.csv").read_text().splitlines()
    assert len(rows) == 7 and all(row.split(",")[3] == "10.0" for row in rows[1:])
    assert "skipped" in result.stdout


def test_grade_all_time_limit_stops_one_submission_not_the_rest(tmp_path):
    from conftest import make_fixture_submission

    root = tmp_path / "class"
    make_fixture_submission(root, "healthy")
    slow = make_fixture_submission(root, "never_healthy", startup=60)
    out = tmp_path / "out"
    result = shipml("grade-all", str(ENGINE_FIXTURE), str(root), "--out", str(out), "--jobs", "2", "--time-limit", "8", timeout=120)
    assert result.returncode == 0, result.stderr
    assert read_results(out / "healthy" / "results.json").score == 10
    stopped = read_results(out / slow.name / "instructor" / "results.json")
    assert stopped.score == 0 and "stopped after 8 s" in stopped.checks[0].message


def _class_of_healthy_teams(root: Path, n: int) -> None:
    from conftest import make_fixture_submission

    for i in range(n):
        make_fixture_submission(root, "healthy").rename(root / f"team{i:02d}")


def test_two_grade_all_runs_over_one_class_share_it_and_never_grade_a_team_twice(tmp_path):
    """A second run started on a class that a first is grading takes the teams nobody holds, and
    each returns only once every team has a grade (the claims of classrun's docstring)."""
    root, out = tmp_path / "class", tmp_path / "out"
    _class_of_healthy_teams(root, 4)
    argv = [sys.executable, "-m", "autograder", "grade-all", str(ENGINE_FIXTURE), str(root), "--out", str(out), "--jobs", "1"]
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True) for _ in range(2)]
    printed = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], printed
    graded = []
    for stdout, _ in printed:
        counts = {status: int(n) for n, status in re.findall(r"(\d+) (graded|skipped)", stdout)}
        assert sum(counts.values()) == 4, stdout  # each run accounts for every team
        graded.append(counts.get("graded", 0))
    assert sum(graded) == 4 and min(graded) >= 1, f"the teams were graded {graded} times by the two runs: shared, never twice"
    for name in (f"team{i:02d}" for i in range(4)):
        assert read_results(out / name / "results.json").score == 10
    assert len((out / "grades.csv").read_text().splitlines()) == 5


def _hold_claim(path: Path) -> subprocess.Popen[str]:
    """Another run's claim: a process that holds the flock on ``path`` and prints 'held'."""
    return subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)


def test_a_claim_ends_with_the_run_that_held_it_even_by_sigkill(tmp_path):
    """A run that holds a team's claim and dies (SIGKILL) leaves no lock behind: the other run,
    waiting for it, grades the team itself."""
    root, out = tmp_path / "class", tmp_path / "out"
    _class_of_healthy_teams(root, 2)
    out.mkdir()
    holder = _hold_claim(out / ".team00.claim")
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    argv = [sys.executable, "-m", "autograder", "grade-all", str(ENGINE_FIXTURE), str(root), "--out", str(out), "--jobs", "1"]
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "team01" / "results.json").is_file():
        time.sleep(0.2)
    time.sleep(1)
    assert run.poll() is None and not (out / "team00" / "results.json").exists(), "the held team waits for its claim"
    holder.kill()
    holder.wait()
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    assert read_results(out / "team00" / "results.json").score == 10 and "2 graded" in stdout


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_stops_grade_all_within_seconds_keeps_what_finished_and_a_rerun_grades_the_rest(tmp_path, signum):
    """Ctrl-C (SIGINT) or SIGTERM mid-class: the team being graded is stopped (its grade process
    runs in a session of its own, so the signal does not reach it by itself), the team not yet
    started is not started, grades.csv holds the finished teams, the console says how to resume,
    and the exit is non-zero. The rerun grades only the two left, never the finished ones."""
    from conftest import make_fixture_submission

    root, out = tmp_path / "class", tmp_path / "out"
    _class_of_healthy_teams(root, 2)  # team00, team01: graded in a few seconds
    slow = make_fixture_submission(root, "never_healthy", startup=90).rename(root / "team02")  # mid-grading at the signal
    token = f"SHIPML_INTERRUPTED_TEAM={os.getpid()}{time.time_ns()}"  # marks team02's own processes
    (slow / "submission.toml").write_text((slow / "submission.toml").read_text().replace("{python} server.py", f"{token} {{python}} server.py"))
    make_fixture_submission(root, "healthy").rename(root / "team03")  # never started
    argv = [sys.executable, "-m", "autograder", "grade-all", str(ENGINE_FIXTURE), str(root), "--out", str(out), "--jobs", "1"]
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not leftover(token):
            time.sleep(0.1)  # until team02's service is up, never to get healthy
        assert leftover(str(root / "team02")) and leftover(token), "team02 is being graded, its service up, when the signal comes"
        sent = time.monotonic()
        run.send_signal(signum)
        stdout, stderr = run.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert took < 10, f"grade-all took {took:.1f} s to stop"
    assert run.returncode == 128 + signum, (stdout, stderr)
    said = " ".join(stderr.split())
    assert f"Interrupted by {signum.name}" in said and "2 submission(s) left without a grade" in said, stderr
    assert "To resume (grades only the rest): shipml grade-all" in said and "Traceback" not in stderr
    assert leftover(str(root)) == [], "no grade process outlives the interrupt"
    gone = time.monotonic() + 5
    while leftover(token) and time.monotonic() < gone:
        time.sleep(0.1)
    assert leftover(token) == [], "nor does any process of the team's"
    rows = {row[0]: row for row in (r.split(",") for r in (out / "grades.csv").read_text().splitlines()[1:])}
    assert {name: rows[name][3] for name in rows} == {"team00": "10.0", "team01": "10.0", "team02": "", "team03": ""}
    assert not (out / "team02" / "results.json").exists() and not (out / "team03").exists(), "an interrupted team gets no grade"
    done_before = {name: (out / name / "results.json").stat().st_mtime_ns for name in ("team00", "team01")}

    make_fixture_submission(tmp_path / "fixed", "healthy")  # team02 fixes its start-up before the rerun
    (root / "team02" / "submission.toml").write_text((tmp_path / "fixed" / "healthy" / "submission.toml").read_text())
    again = shipml("grade-all", str(ENGINE_FIXTURE), str(root), "--out", str(out), "--jobs", "1", timeout=120)
    assert again.returncode == 0, again.stderr
    assert re.search(r"\b2 graded, 2 skipped\b", again.stdout), again.stdout
    assert {name: (out / name / "results.json").stat().st_mtime_ns for name in done_before} == done_before
    assert [r.split(",")[3] for r in (out / "grades.csv").read_text().splitlines()[1:]] == ["10.0"] * 4


def test_an_interrupt_ends_a_wait_for_another_runs_claim(tmp_path):
    """A run waiting for a team that another run holds stops waiting at SIGINT, and leaves the
    team without a grade (the other run, or a rerun, grades it)."""
    root, out = tmp_path / "class", tmp_path / "out"
    _class_of_healthy_teams(root, 1)
    out.mkdir()
    holder = _hold_claim(out / ".team00.claim")
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        argv = [sys.executable, "-m", "autograder", "grade-all", str(ENGINE_FIXTURE), str(root), "--out", str(out)]
        run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        time.sleep(3)
        assert run.poll() is None, "the run waits for the held claim"
        sent = time.monotonic()
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=30)
        assert time.monotonic() - sent < 10 and run.returncode == 130, stderr
        assert "Interrupted by SIGINT" in stderr and not (out / "team00" / "results.json").exists()
    finally:
        holder.kill()
        holder.wait()


def test_grade_all_keeps_both_grades_of_two_submissions_with_one_team_name_and_warns(tmp_path):
    """Two folders whose submission.toml say the same team and member (a kept starter name, a
    copy): each is graded and kept under its folder; the console and the class report name both."""
    root, out = tmp_path / "class", tmp_path / "out"
    _class_of_healthy_teams(root, 2)  # both say team 'team-healthy', member 'healthy-student'
    (root / "team01" / "submission.toml").write_text((root / "team01" / "submission.toml").read_text().replace("--mode healthy", "--mode crash"))
    result = shipml("grade-all", str(ENGINE_FIXTURE), str(root), "--out", str(out), timeout=180)
    assert result.returncode == 0, result.stderr
    scores = {name: read_results(out / name / "results.json").score for name in ("team00", "team01")}
    assert scores == {"team00": 10, "team01": 7}, "both grades kept, none merged"
    for warning in ("duplicate team name 'team-healthy' in 2 submissions: team00, team01",
                    "duplicate member id 'healthy-student' in 2 submissions: team00, team01"):
        assert warning in result.stderr and warning in (out / "class-report.md").read_text()
    rows = (out / "grades.csv").read_text().splitlines()
    assert "team name 'team-healthy' also in team01" in rows[1] and "team name 'team-healthy' also in team00" in rows[2]
