"""The check catalogue: every check is documented, used by a lab, and proven by that lab."""

from __future__ import annotations

import pytest
from conftest import ENGINE_FIXTURE

from autograder.catalogue import LABS_DIR, all_checks, find_lab, lab_check_params, resolve
from autograder.mutants import list_mutants
from autograder.spec import load_lab

LABS = [load_lab(path.parent) for path in sorted(LABS_DIR.glob("*/lab.toml"))]


def test_every_catalogue_check_is_documented_and_used():
    used = {resolve(c.function).__name__ for lab in [*LABS, load_lab(ENGINE_FIXTURE)] for c in lab.checks}
    for name, fn in all_checks().items():
        assert fn.__doc__ and fn.__doc__.strip(), f"{name} needs a docstring saying which property it checks"
        assert name in used, f"{name} is in the catalogue but no lab.toml uses it"


@pytest.mark.parametrize("check", lab_check_params("serving"))
def test_every_serving_check_has_a_mutant_that_must_fail_it(check):
    lab = find_lab("serving")
    assert any(check.id in m.fails for m in list_mutants(lab)), f"no mutant proves {check.id}"
    assert check.description and check.ml_test_score
