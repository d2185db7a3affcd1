"""The grading policy the CLI's verbs call: what the team never sees, which held-out data a run
uses, and the data each side of the sandbox gets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ENGINE_FIXTURE

from autograder import data
from autograder.engine.policy import choose_heldout, grading_data, heldout_folder, hidden_paths
from autograder.engine.spec import find_lab
from autograder.errors import ShipmlError
from autograder.paths import DATASETS_DIR, FLIGHTS_DIR, KIT_ROOT, LABS_DIR


def test_a_lab_without_data_writes_no_public_export(monkeypatch):
    """The engine fixture lab has data = false: grading it must not pay for the flight export."""
    def refuse(*args: object, **kwargs: object) -> Path:
        raise AssertionError("write_public was called for a lab that gives no data")

    monkeypatch.setattr(data, "write_public", refuse)
    lab = find_lab(ENGINE_FIXTURE)
    assert lab.lab.data is False
    with grading_data(lab, heldout=None) as given:
        assert given.team is None
        assert given.checks.team_data_id == "" and given.checks.heldout is None


def test_a_lab_with_data_gives_the_team_a_fresh_public_export_removed_afterwards():
    lab = find_lab("serving")
    with grading_data(lab, heldout=FLIGHTS_DIR) as given:
        assert given.team is not None and given.team.is_dir() and given.team != FLIGHTS_DIR
        assert given.checks.team_data_id == data.dataset_id(given.team)
        assert given.checks.public == FLIGHTS_DIR and given.checks.heldout == FLIGHTS_DIR
        export = given.team
    assert not export.exists(), "the export is removed when grading ends"


def test_hidden_paths_hold_the_kit_the_heldout_data_the_output_and_the_other_teams(tmp_path):
    team = tmp_path / "class" / "team-a"
    team.mkdir(parents=True)
    paths = hidden_paths(team, tmp_path / "out", tmp_path / "heldout")
    for path in (KIT_ROOT, DATASETS_DIR, LABS_DIR, (tmp_path / "heldout").resolve(), (tmp_path / "out").resolve(), team.parent.resolve()):
        assert path in paths
    assert Path("/tmp") not in hidden_paths(Path("/tmp/team"), None), "never a top-level folder such as /tmp"


def test_a_self_check_never_gets_heldout_data_and_a_grade_checks_the_folder_it_is_given(tmp_path):
    assert choose_heldout(str(tmp_path), hidden=False) is None, "a self-check ignores --heldout"
    assert choose_heldout(None, hidden=True) == FLIGHTS_DIR.resolve(), "the bundled months by default"
    with pytest.raises(ShipmlError) as info:
        heldout_folder(tmp_path)
    assert str(info.value).startswith(f"--heldout {tmp_path}: ") and "\n" not in str(info.value)


def test_held_out_months_are_loaded_only_for_a_lab_whose_checks_read_them(monkeypatch):
    """Loading and validating the held-out months was most of a small lab's fixed cost: a lab no
    check of which says requires = ["heldout"] gets none, unless the instructor names a folder."""
    loaded: list[Path] = []
    real = data.load_flights

    def counting(split: str, folder: Path | None = None, **kw: object):
        loaded.append(Path(folder or FLIGHTS_DIR))
        return real(split, folder, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(data, "load_flights", counting)
    tiny, serving = find_lab(ENGINE_FIXTURE), find_lab("serving")
    assert choose_heldout(None, hidden=True, lab=tiny) is None and loaded == []
    assert choose_heldout(None, hidden=True, lab=serving) == FLIGHTS_DIR.resolve() and loaded
    assert choose_heldout(FLIGHTS_DIR, hidden=True, lab=tiny) == FLIGHTS_DIR.resolve(), "a folder given is checked and used"


def test_hidden_checks_get_the_labs_instructor_folder_and_a_self_check_never_does(tmp_path):
    """``LabData.hidden``: the lab's ``hidden/`` folder when hidden checks run, None in a team's
    self-check (where only public checks run) and for a lab that has none."""
    shutil.copytree(ENGINE_FIXTURE, tmp_path / "lab")
    (tmp_path / "lab" / "hidden").mkdir()
    (tmp_path / "lab" / "hidden" / "buggy.py").write_text("x = 1\n")
    lab = find_lab(tmp_path / "lab")
    with grading_data(lab, heldout=None, hidden=True) as graded:
        assert graded.checks.hidden == (tmp_path / "lab" / "hidden").resolve()
    with grading_data(lab, heldout=None, hidden=False) as self_check:
        assert self_check.checks.hidden is None
    with grading_data(find_lab(ENGINE_FIXTURE), heldout=None, hidden=True) as without:
        assert without.checks.hidden is None
