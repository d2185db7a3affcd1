"""A course's own held-out data: built from the public source with a secret salt, holding no
flight the students have, and graded with ``--heldout``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, is_root, shipml

from autograder import data

BUILD = REPO / "datasets" / "flights" / "build.py"
KEY = ["year", "month", "day", "carrier", "flight", "origin", "sched_dep_time"]


@pytest.fixture(scope="module")
def course_heldout(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("private") / "heldout"
    subprocess.run([sys.executable, str(BUILD), "--heldout-salt", "a course secret", "--out", str(out)], check=True, capture_output=True)
    return out


def test_a_course_heldout_set_holds_only_heldout_months_and_no_flight_of_the_bundled_sample(course_heldout):
    mine = data.load_flights("all", course_heldout)
    assert len(mine) == 20_000 and set(mine["month"]) == set(data.PERIODS["heldout"])
    bundled = data.load_flights("all")
    shared = mine.merge(bundled, on=KEY, how="inner")
    assert shared.empty, f"{len(shared)} flights of the course's set are in the bundled sample"
    weather = data.load_weather(course_heldout)
    assert mine.merge(weather[["origin", "time_hour"]], on=["origin", "time_hour"]).shape[0] > 0.95 * len(mine)


def test_the_salt_decides_the_sample(course_heldout, tmp_path):
    other = tmp_path / "other"
    subprocess.run([sys.executable, str(BUILD), "--heldout-salt", "another secret", "--out", str(other)], check=True, capture_output=True)
    a, b = data.load_flights("all", course_heldout), data.load_flights("all", other)
    assert len(a.merge(b, on=KEY)) < 0.5 * len(a), "another salt, another sample"


def test_build_refuses_to_write_a_private_set_into_the_kit():
    proc = subprocess.run([sys.executable, str(BUILD), "--heldout-salt", "x"], capture_output=True, text=True)
    assert proc.returncode == 2 and "outside the kit" in proc.stderr


def test_grade_names_a_heldout_folder_without_the_heldout_months(tmp_path):
    public = data.write_public(tmp_path / "public")
    proc = shipml("grade", "serving", str(REPO / "labs" / "reference"), "--heldout", str(public))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "--heldout" in proc.stderr and "held-out" in proc.stderr


@pytest.mark.skipif(not is_root() or shutil.which("bwrap") is None, reason="the allow-list view is the root runner's, with bubblewrap")
def test_a_team_cannot_read_a_heldout_folder_kept_under_a_folder_its_view_shows(course_heldout, tmp_path):
    """An instructor keeps the held-out set under /usr/local/share, a folder the team's view
    shows read-only (system folders are in it). ``--heldout`` puts the folder among the hidden
    paths, so the team's commands find nothing there, even knowing the exact path."""
    shared = Path(tempfile.mkdtemp(prefix="heldout-probe-", dir="/usr/local/share"))
    try:
        shutil.copytree(course_heldout, shared / "heldout")
        subprocess.run(["chmod", "-R", "a+rX", str(shared)], check=True)  # every user may read it: only the view can hide it
        target = shared / "heldout" / "flights.csv.gz"
        team = tmp_path / "team"
        team.mkdir()
        (team / "submission.toml").write_text(f'''[team]
name = "Peeking team"
members = [{{ id = "peek" }}]

[commands]
train = "sh -c 'if head -c 16 {target} >/dev/null 2>&1; then echo ESCAPED-heldout; else echo blocked-heldout; fi; if ls {shared} >/dev/null 2>&1; then echo listed-share; fi; exit 1'"
serve = "{{python}} -c 'raise SystemExit(1)'"
predict = "{{python}} -c 'raise SystemExit(1)'"

[service]
health_path = "/health"
startup_timeout = 5
''')
        out = tmp_path / "out"
        proc = shipml("grade", "serving", str(team), "--heldout", str(shared / "heldout"), "--out", str(out), "--quiet", timeout=600)
        assert proc.returncode == 0, proc.stderr
        printed = {line.strip() for line in (out / "report.md").read_text().splitlines()}  # the command's output lines
        assert "blocked-heldout" in printed and "ESCAPED-heldout" not in printed, printed
        assert "listed-share" in printed  # the folder above it is in the view: the mask is what hid it
    finally:
        shutil.rmtree(shared)
