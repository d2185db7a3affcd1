"""Every lab's proof, one parametrized suite over every folder of labs/ with a lab.toml: adding a
lab folder adds its proof.

- the reference scores full marks;
- the starter runs and scores under the bound its ``proof.toml`` declares;
- each mutant proven through the harness (``fails`` in mutants/mutants.toml) fails exactly those
  checks and keeps every other point;
- each cheat of ``proof.toml`` loses the points of what it fakes, and only those;
- every check is covered by a mutant that must fail it, and names the role that owns it;
- the student release (``shipml release LAB``) holds no reference, no mutant, no hidden check
  and no held-out label.

Each lab's class (reference, starter, mutants, cheats) is graded once per session, in one class
run as an instructor would (the ``graded_lab`` fixture of conftest.py: ``shipml grade-all LAB
DIR --out OUT --jobs 2``). A notebook lab's nbgrader side is proven in test_nbgrader_cycle.py.
"""

from __future__ import annotations

import hashlib
import subprocess
import tomllib
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import LAB_NAMES, LABS_DIR, PROOF_FILE, REPO, lab_notebooks, load_proof

from autograder.data import PERIODS
from autograder.engine.mutants import list_mutants, materialize, reference_dir, starter_dir
from autograder.engine.results import read_results
from autograder.engine.spec import ROLES as KIT_ROLES
from autograder.engine.spec import CheckSpec, find_lab, load_lab, load_submission

ROLES = {"data-scientist", "software-engineer", "operator", "domain"}
"""The four roles of a lab team; every check names the one that owns it."""
SPECS = {name: find_lab(name) for name in LAB_NAMES}
MUTANTS = {name: list_mutants(spec) for name, spec in SPECS.items()}
HARNESS_MUTANTS = [(lab, m) for lab in LAB_NAMES for m in MUTANTS[lab] if m.fails is not None]
PATCH_LABS = [lab for lab in LAB_NAMES if any(m.patch is not None for m in MUTANTS[lab])]
CHEAT_SHARE = 0.25
"""A cheat keeps at most this share of the points of each check it fakes."""


def _cheats(lab: str) -> list[str]:
    """The lab's declared cheats, for collection (a missing or bad proof.toml fails its own test)."""
    try:
        return list(load_proof(lab).cheats)
    except Exception:
        return []


CHEATS = [(lab, name) for lab in LAB_NAMES for name in _cheats(lab)]


def scores(out: Path, team: str) -> dict[str, float]:
    return {c.id: c.score for c in read_results(out / team / "instructor" / "results.json").checks}


def full_points(lab: str) -> dict[str, float]:
    return {c.id: c.points for c in SPECS[lab].checks}


# ------------------------------------------------------------------ declarations (no grading)


def test_every_lab_folder_is_proven():
    """Every folder of labs/ is a lab with a lab.toml (so this suite proves it), or a reference
    that labs grade against."""
    assert "serving" in LAB_NAMES and "beyond-accuracy" in LAB_NAMES, LAB_NAMES
    references = {reference_dir(spec) for spec in SPECS.values()}
    unproven = [p.name for p in LABS_DIR.iterdir() if p.is_dir() and p.name not in LAB_NAMES and p.resolve() not in references]
    assert not unproven, f"lab folders without a lab.toml, so without a proof: {unproven}"


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_lab_declares_its_proof_with_its_own_checks(lab):
    proof = load_proof(lab)
    unknown = proof.check_ids() - set(full_points(lab))
    assert not unknown, f"labs/{lab}/{PROOF_FILE} names checks the lab does not have: {sorted(unknown)}"
    assert proof.starter.max_score < SPECS[lab].max_points, "a starter bound at full marks proves nothing"
    for name, cheat in proof.cheats.items():
        assert cheat.fails, f"cheat {name} must lose something"


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_every_check_has_a_mutant_that_must_fail_it(lab):
    covered = {check for m in MUTANTS[lab] if m.fails is not None for check in m.fails}
    assert covered == {c.id for c in SPECS[lab].checks}


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_every_check_names_the_role_that_owns_it(lab):
    assert "role" in CheckSpec.model_fields and set(KIT_ROLES) == ROLES
    roles = {c.id: c.role for c in SPECS[lab].checks}
    assert all(role in ROLES for role in roles.values()), roles


@pytest.mark.parametrize("lab", PATCH_LABS)
def test_mutant_patches_apply_inside_a_git_checkout(lab, tmp_path):
    """The demo writes mutants under the kit's own checkout: git must not skip the patch there."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for mutant in (m for m in MUTANTS[lab] if m.patch is not None):
        dest = materialize(SPECS[lab], mutant, tmp_path / "out" / mutant.name)
        lines = mutant.patch.read_text().splitlines()
        added = [line[6:] for line in lines if line.startswith("+++ b/")]
        deleted = [line[6:] for i, line in enumerate(lines) if line.startswith("--- a/") and lines[i + 1] == "+++ /dev/null"]
        assert added or deleted
        for target in added:
            before = reference_dir(SPECS[lab]) / target
            assert (dest / target).read_text() != (before.read_text() if before.exists() else None), f"{mutant.name}: {target} unchanged"
        for target in deleted:
            assert not (dest / target).exists(), f"{mutant.name}: {target} not deleted"


# ------------------------------------------------------------------ the class run


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_reference_gets_full_marks(graded_lab, lab):
    result = read_results(graded_lab(lab) / "reference" / "instructor" / "results.json")
    assert result.score == result.max_score == SPECS[lab].max_points, [(c.id, c.message) for c in result.checks if c.status != "passed"]


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_starter_runs_and_scores_low(graded_lab, lab):
    bound, full = load_proof(lab).starter, full_points(lab)
    got = scores(graded_lab(lab), "starter")
    assert set(got) == set(full), "every check ran on the starter"
    assert sum(got.values()) <= bound.max_score, got
    for check in bound.zero:
        assert got[check] == 0, check
    for check in bound.full:
        assert got[check] == full[check], f"the starter keeps {check}: {got[check]} of {full[check]}"
    for check, limit in bound.below.items():
        assert got[check] < limit, f"the starter scores {got[check]} on {check}, the bound is < {limit}"


@pytest.mark.parametrize(("lab", "mutant"), HARNESS_MUTANTS, ids=[f"{lab}-{m.name}" for lab, m in HARNESS_MUTANTS])
def test_mutant_fails_exactly_its_checks(graded_lab, lab, mutant):
    got = scores(graded_lab(lab), f"mutant-{mutant.name}")
    full = full_points(lab)
    failed = {check for check, score in got.items() if score < full[check]}
    assert failed == set(mutant.fails), f"{mutant.name}: failed {sorted(failed)}, declared {sorted(mutant.fails)}"
    for check in full:
        if check not in mutant.fails:
            assert got[check] == full[check]


@pytest.mark.parametrize(("lab", "name"), CHEATS, ids=[f"{lab}-{name}" for lab, name in CHEATS])
def test_cheat_loses_the_points_of_what_it_fakes(graded_lab, lab, name):
    cheat = load_proof(lab).cheats[name]
    fails = set(cheat.fails)
    result = read_results(graded_lab(lab) / f"cheat-{name}" / "instructor" / "results.json")
    full = full_points(lab)
    got = {c.id: c.score for c in result.checks}
    assert set(got) == set(full), "every check ran on the cheat"
    lost = {check for check, score in got.items() if score < full[check]}
    assert lost == fails | set(cheat.partly), f"{name}: lost {sorted(lost)}; {[(c.id, c.message[:300]) for c in result.checks if c.id in lost]}"
    for check in fails:
        assert got[check] <= CHEAT_SHARE * full[check], f"{name} keeps {got[check]} of {full[check]} on {check}"
    for check, points in cheat.partly.items():
        assert got[check] <= full[check] - points, f"{name} keeps {got[check]} of {full[check]} on {check}, part of which it fakes"


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_only_an_implausible_score_is_flagged_for_review(graded_lab, lab):
    out = graded_lab(lab)
    assert read_results(out / "reference" / "instructor" / "results.json").needs_review == []
    header = (out / "grades.csv").read_text().splitlines()[0]
    assert header.endswith(",needs_review")


# ------------------------------------------------------------------ the student release


def every_file(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def texts(root: Path) -> dict[str, str]:
    """Every file of ``root`` that reads as UTF-8 text, by relative path."""
    found = {}
    for path in every_file(root):
        try:
            found[str(path.relative_to(root))] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
    return found


def team_texts(root: Path) -> dict[str, str]:
    """``texts`` without the kit's own code (``shipml-kit/autograder``, this checkout's package,
    which names the notebook markers it strips): the files a notebook's answers could leak into."""
    return {relative: text for relative, text in texts(root).items() if not relative.startswith("shipml-kit/autograder/")}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def marked_lines(notebook: Path, begin: str, end: str) -> list[str]:
    """The source notebook's lines between ``### BEGIN x`` and ``### END x`` markers that appear
    nowhere outside them: what only the instructors' copy holds."""
    inside, outside = [], set()
    for cell in nbformat.read(notebook, as_version=4).cells:
        rest = cell.source
        while begin in rest:
            before, _, rest = rest.partition(begin)
            region, _, rest = rest.partition(end)
            outside |= {line.strip() for line in before.splitlines()}
            inside += [line.strip() for line in region.splitlines() if len(line.strip()) > 15]
        outside |= {line.strip() for line in rest.splitlines()}
    return [line for line in inside if line not in outside]


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_release_holds_the_starter_and_the_public_checks(lab_release, lab):
    """What the scans below look through is the team's template: the starter, the notebooks as
    released, the public checks and the public data."""
    release, spec = lab_release(lab), SPECS[lab]
    starter = starter_dir(spec)
    for path in every_file(starter):
        if "__pycache__" not in path.parts:
            assert digest(release / path.relative_to(starter)) == digest(path), path
    for notebook in lab_notebooks(spec):
        assert (release / notebook.name).is_file(), f"{notebook.name} is released"
    released = load_lab(release / "shipml-kit" / "labs" / lab)
    assert [c.id for c in released.checks] == [c.id for c in spec.selected("public")]
    assert any(p.name.startswith("flights.csv") for p in every_file(release / "shipml-kit" / "datasets"))


def assert_no_marked_lines(release: Path, notebook: Path, marker: str, what: str) -> None:
    """No file of ``release`` holds a line between ``### BEGIN <marker>`` and ``### END <marker>``
    of ``notebook``, nor the marker itself; the notebook must have such lines (the scan can fail)."""
    marked = marked_lines(notebook, f"### BEGIN {marker}", f"### END {marker}")
    assert marked, f"{notebook.name} has {what}: the scan means something"
    for relative, text in team_texts(release).items():
        assert f"BEGIN {marker}" not in text, relative
        leaked = [line for line in marked if line in text]
        assert not leaked, f"{relative} holds {what}: {leaked[:3]}"


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_release_holds_no_reference(lab_release, lab):
    release, spec = lab_release(lab), SPECS[lab]
    notebooks = lab_notebooks(spec)
    for notebook in notebooks:
        assert_no_marked_lines(release, notebook, "SOLUTION", "reference answers")
    for path in every_file(release):
        assert "course" not in path.relative_to(release).parts, path  # the nbgrader course: source notebooks, gradebook
    if notebooks:
        return
    reference, starter = reference_dir(spec), starter_dir(spec)
    # What any lab's starter hands out is public, not an answer: the serving lab's API contract
    # is a file of its starter, of the reference, and of the kit every release ships.
    given = {digest(p) for other in SPECS.values() if (other_starter := starter_dir(other)).is_dir()
             for p in every_file(other_starter)}
    answers = {digest(p): p for p in every_file(reference)
               if "__pycache__" not in p.parts and p.stat().st_size and digest(p) not in given}
    assert answers, "the reference has files of its own: the scan means something"
    packages = {p.name for p in reference.iterdir() if p.is_dir() and not (starter / p.name).exists()}
    team = load_submission(reference).team.name
    for path in every_file(release):
        relative = path.relative_to(release)
        assert digest(path) not in answers, f"{relative} is the reference's {answers[digest(path)].relative_to(reference)}"
        assert not packages & set(relative.parts), f"{relative}: a folder of the reference"
    for relative, text in texts(release).items():
        assert team not in text, f"{relative} names the reference team"


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_release_holds_no_mutant_and_no_proof(lab_release, lab):
    release, proof = lab_release(lab), load_proof(lab)
    given = {digest(p) for p in every_file(starter_dir(SPECS[lab]))}  # the cheats share the starter's contract
    cheat_files = {digest(REPO / proof.cheat_app.folder / f) for f in proof.cheat_app.files} - given if proof.cheat_app else set()
    mutant_files = ({digest(p) for p in every_file(SPECS[lab].root / SPECS[lab].lab.mutants)} | {digest(SPECS[lab].root / PROOF_FILE)}
                    | {digest(SPECS[lab].root / cheat.patch) for cheat in proof.cheats.values() if cheat.patch})
    for path in every_file(release):
        relative = path.relative_to(release)
        assert path.suffix != ".patch" and path.name not in ("mutants.toml", PROOF_FILE), relative
        assert not {"mutants", "cheats"} & set(relative.parts), relative
        assert digest(path) not in mutant_files, f"{relative} is a file of the lab's mutants or proof"
        assert digest(path) not in cheat_files, f"{relative} is a cheat's code"
    for relative, text in texts(release).items():
        for mutant in MUTANTS[lab]:
            assert mutant.description not in text, f"{relative} describes mutant {mutant.name}"


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_release_holds_no_hidden_check(lab_release, lab):
    release, spec = lab_release(lab), SPECS[lab]
    lab_toml = release / "shipml-kit" / "labs" / lab / "lab.toml"
    text = lab_toml.read_text(encoding="utf-8")
    released = tomllib.loads(text)
    assert 'visibility = "hidden"' not in text, "a hidden check in the released lab.toml"
    assert not {"reference", "mutants"} & set(released["lab"]), "no pointer to an instructor folder"
    public_params = {key for c in spec.selected("public") for key in c.params}
    for check in spec.selected("hidden"):
        assert f'"{check.id}"' not in text, check.id
        for key in set(check.params) - public_params:
            assert key not in text, f"{check.id}'s parameter {key}"
    for notebook in lab_notebooks(spec):
        assert_no_marked_lines(release, notebook, "HIDDEN TESTS", "hidden tests")


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_release_holds_nothing_of_the_labs_instructor_folder(lab_release, lab):
    """``labs/<lab>/hidden/`` (what hidden checks read: the pipeline lab's buggy modules) never
    ships: none of its files, none of their code, and no description of a bug not shown."""
    release, folder = lab_release(lab), SPECS[lab].root / "hidden"
    if not folder.is_dir():
        pytest.skip(f"{lab} has no instructor folder")
    secret = {digest(p): p for p in every_file(folder)}
    snippets: list[str] = []
    for path in folder.glob("*.toml"):
        for item in tomllib.loads(path.read_text(encoding="utf-8")).get("chaffs", {}).values():
            lines = [line for line in item.get("code", "").splitlines() if len(line.strip()) > 30]
            snippets += lines
            if not item.get("shown", False):
                snippets.append(item["description"])
    assert secret and snippets, "the instructor folder holds something to look for: the scan means something"
    for path in every_file(release):
        relative = path.relative_to(release)
        assert "hidden" not in relative.parts[:-1] or "labs" not in relative.parts, relative
        assert digest(path) not in secret, f"{relative} is the instructor's {secret[digest(path)].name}"
    for relative, text in texts(release).items():
        leaked = [snippet for snippet in snippets if snippet in text]
        assert not leaked, f"{relative} holds instructor-only text: {leaked[:2]}"


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_release_holds_no_heldout_label(lab_release, lab):
    release = lab_release(lab)
    heldout = set(PERIODS["heldout"])
    tables = [p for p in every_file(release) if p.name.endswith((".csv.gz", ".csv"))]
    assert any("arr_delay" in pd.read_csv(p, nrows=0).columns for p in tables), "the release has labelled flights: the scan means something"
    for path in tables:
        frame = pd.read_csv(path)
        if "month" in frame:  # flights and weather: local months (a late August flight may land in September UTC)
            assert not set(frame["month"]) & heldout, f"{path.name} holds held-out months"
            if "arr_delay" in frame:
                assert frame["month"].max() == max(PERIODS["validation"]), "the public months are all there"


# ------------------------------------------------------------------ one lab's own


def test_serving_starter_reference_and_harness_share_one_contract():
    """The harness validates answers with the contract it publishes to the teams, byte for byte."""
    from autograder.checks import serving_contract

    lab = SPECS["serving"]
    harness = Path(serving_contract.__file__).read_bytes()
    assert (starter_dir(lab) / "app" / "contract.py").read_bytes() == harness
    assert (REPO / "tests" / "fixtures" / "serving_app" / "contract.py").read_bytes() == harness
    assert (reference_dir(lab) / "flightdelay" / "contract.py").read_bytes() == harness
