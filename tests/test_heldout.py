"""A course's own held-out data: built from the public source with a secret salt, holding no
flight the students have, and graded with ``--heldout``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, shipml

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
