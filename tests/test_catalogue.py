"""The check catalogue: every check is documented, used by a lab, proven by a mutant, tested on
its own, one hop from lab.toml, and shown in its lab's README exactly as lab.toml says."""

from __future__ import annotations

import inspect

import pytest
from conftest import ENGINE_FIXTURE, shipml

from autograder import checkapi
from autograder.engine import labdoc
from autograder.engine.catalogue import all_checks, locate, resolve
from autograder.engine.mutants import list_mutants
from autograder.engine.spec import find_lab, load_lab
from autograder.paths import KIT_ROOT, LABS_DIR

LABS = [load_lab(path.parent) for path in sorted(LABS_DIR.glob("*/lab.toml"))]
LAB_CHECKS = [pytest.param(lab, check, id=f"{lab.lab.name}:{check.id}") for lab in LABS for check in lab.checks]


def test_the_check_api_names_exactly_its_public_names():
    # As httpx guards httpx.__all__: a name added to or dropped from the API is a decision.
    assert checkapi.__all__ == [
        "CheckContext", "CheckFailed", "CheckFunction", "CommandResult", "Input", "LabData", "NoParams",
        "Params", "Runner", "ServiceHandle", "Verdict", "cancel_flag", "cancel_requested", "params_model",
        "partial", "passed",
    ]
    for name in checkapi.__all__:
        value = getattr(checkapi, name)
        if isinstance(value, type) or inspect.isfunction(value):
            assert value.__module__ == "autograder.checkapi", name


def test_checks_need_neither_the_sandbox_nor_the_engine():
    for name, fn in all_checks().items():
        source = inspect.getsource(inspect.getmodule(fn))
        for forbidden in ("autograder.engine", "sandbox", "Sandbox"):
            assert forbidden not in source, f"{name}'s module reaches into {forbidden}"


def test_every_catalogue_check_is_documented_and_used():
    used = {check.function for lab in [*LABS, load_lab(ENGINE_FIXTURE)] for check in lab.checks}
    for name, fn in all_checks().items():
        assert fn.__doc__ and fn.__doc__.strip(), f"{name} needs a docstring saying which property it checks"
        assert name in used, f"{name} is in the catalogue but no lab.toml uses it"


@pytest.mark.parametrize(("lab", "check"), LAB_CHECKS)
def test_every_check_is_one_hop_from_lab_toml_and_has_a_fast_test(lab, check):
    fn = resolve(check.function)
    module, _, name = check.function.partition(":")
    assert fn.__module__ == module and fn.__name__ == name, "lab.toml names the function's real import path"
    where = locate(check.function)
    path, _, line = where.code.partition(":")
    assert (KIT_ROOT / path).is_file() and f"def {name}(" in (KIT_ROOT / path).read_text().splitlines()[int(line) - 1]
    assert where.test, f"{check.function} has no test named test_{name} in tests/"


@pytest.mark.parametrize(("lab", "check"), LAB_CHECKS)
def test_every_check_has_a_mutant_that_must_fail_it(lab, check):
    assert any(check.id in (m.fails or ()) for m in list_mutants(lab)), f"no mutant of {lab.lab.name} must fail {check.id}"


def test_a_check_without_a_mutant_is_caught(tmp_path):
    """The test above can fail: a lab whose mutants prove no check has none for it."""
    import shutil

    lab_dir = tmp_path / "serving"
    shutil.copytree(LABS_DIR / "serving", lab_dir)
    text = (lab_dir / "mutants" / "mutants.toml").read_text().replace('fails = ["latency"]', "fails = []")
    (lab_dir / "mutants" / "mutants.toml").write_text(text)
    (lab_dir / "lab.toml").write_text((lab_dir / "lab.toml").read_text().replace('reference = "../reference"', f'reference = "{LABS_DIR / "reference"}"'))
    lab = load_lab(lab_dir)
    assert not any("latency" in (m.fails or ()) for m in list_mutants(lab))


def test_a_misspelt_mutant_field_is_named_with_the_field_meant(tmp_path):
    import shutil

    from autograder.engine.spec import SpecError

    lab_dir = tmp_path / "serving"
    shutil.copytree(LABS_DIR / "serving", lab_dir)
    index = lab_dir / "mutants" / "mutants.toml"
    index.write_text(index.read_text().replace('fails = ["latency"]', 'fail = ["latency"]'))
    with pytest.raises(SpecError) as info:
        list_mutants(load_lab(lab_dir))
    assert "mutants.toml: mutant 'slow_predict': field 'fail' is not a known field; did you mean fails? (it takes: " in str(info.value)


@pytest.mark.parametrize("lab", LABS, ids=[lab.lab.name for lab in LABS])
def test_readme_check_table_is_lab_toml(lab):
    assert labdoc.readme_table(lab) == labdoc.checks_markdown(lab), (
        f"{labdoc.readme_path(lab)} disagrees with lab.toml; run: shipml checks {lab.lab.name} --write-readme"
    )


def test_a_hand_edited_readme_table_is_caught(tmp_path):
    import shutil

    shutil.copytree(LABS_DIR / "serving", tmp_path / "serving")
    readme = tmp_path / "serving" / "README.md"
    points = {c.id: c.points for c in find_lab("serving").checks}["latency"]
    text = readme.read_text()
    assert f"| `latency` | {points:g} |" in text
    readme.write_text(text.replace(f"| `latency` | {points:g} |", f"| `latency` | {points + 10:g} |"))
    lab = load_lab(tmp_path / "serving")
    assert labdoc.readme_table(lab) != labdoc.checks_markdown(lab)
    assert labdoc.write_readme(lab) and labdoc.readme_table(lab) == labdoc.checks_markdown(lab)


def test_shipml_checks_shows_code_mutants_and_test_per_check():
    proc = shipml("checks", "serving", check=True)
    lab = find_lab("serving")
    for check in lab.checks:
        assert check.id in proc.stdout
    block = proc.stdout.split("\nno_skew  ")[1].split("\n\n")[0]
    points = {c.id: c.points for c in lab.checks}["no_skew"]
    assert f"{points:g} points  public  Monitor 3: Training and serving are not skewed" in block
    assert "\n  role     data-scientist\n  requires (nothing)\n" in block
    assert "code     autograder/checks/serving.py:" in block and "check_no_training_serving_skew" in block
    assert "mutants  utc_hour_skew" in block
    assert "test     tests/test_checks_serving.py::test_check_no_training_serving_skew" in block
    assert "doc      labs/serving/README.md" in block
    accuracy = proc.stdout.split("\naccuracy  ")[1].split("\n\n")[0]
    assert "\n  role     data-scientist\n  requires heldout (the held-out data" in accuracy
    points = {role: sum(c.points for c in lab.checks if c.role == role) for role in ("data-scientist", "software-engineer", "operator")}
    assert (f"by role: data-scientist {points['data-scientist']:g}, software-engineer {points['software-engineer']:g}, "
            f"operator {points['operator']:g}, domain 0\n") in proc.stdout


def test_the_readme_check_table_shows_each_checks_role():
    lab = find_lab("serving")
    table = labdoc.checks_markdown(lab)
    assert table.startswith("| check | points | visibility | role | ML Test Score | passes when |")
    assert "| `no_skew` | 15 | public | data scientist | Monitor 3 |" in table
    assert "| `accuracy` | 20 | hidden | data scientist | Model 2 |" in table
