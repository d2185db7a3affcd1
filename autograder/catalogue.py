"""The check catalogue: every ``check_<property>`` function a lab.toml may name.

Like scikit-learn's ``check_estimator``, each check is one plain function about one property.
A lab.toml names a check either by its bare name (looked up in the kit's check modules, in
:data:`CHECK_MODULES`) or as ``module:function``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from autograder.engine import CheckFunction
from autograder.errors import ShipmlError
from autograder.spec import LabSpec, load_lab

CHECK_MODULES = ("autograder.checks_common", "autograder.checks_serving")

LABS_DIR = Path(__file__).resolve().parent.parent / "labs"


def resolve(name: str) -> CheckFunction:
    """The check function a lab.toml names, or a one-line error."""
    module_names = [name.partition(":")[0]] if ":" in name else list(CHECK_MODULES)
    attr = name.rpartition(":")[2]
    for module_name in module_names:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        fn = getattr(module, attr, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    raise ShipmlError(f"lab.toml names check function '{name}', which does not exist; see 'shipml checks LAB' for the catalogue")


def all_checks() -> dict[str, CheckFunction]:
    """Every check function in the kit's catalogue, by name."""
    found: dict[str, CheckFunction] = {}
    for module_name in CHECK_MODULES:
        module = importlib.import_module(module_name)
        for attr in dir(module):
            if attr.startswith("check_") and callable(getattr(module, attr)):
                found[attr] = getattr(module, attr)
    return found


def find_lab(name_or_path: str | Path) -> LabSpec:
    """A lab by folder path, or by its name under the kit's ``labs/`` folder."""
    path = Path(name_or_path)
    if not path.exists() and (LABS_DIR / str(name_or_path)).exists():
        path = LABS_DIR / str(name_or_path)
    if not path.exists():
        known = sorted(p.parent.name for p in LABS_DIR.glob("*/lab.toml"))
        raise ShipmlError(f"no lab '{name_or_path}': give a lab folder or one of {', '.join(known) or '(none)'}")
    lab = load_lab(path)
    for check in lab.checks:
        resolve(check.function)
    return lab


def lab_check_params(lab: LabSpec | str | Path) -> list[Any]:
    """The lab's checks as pytest parameters: ``@pytest.mark.parametrize("check", lab_check_params(...))``."""
    import pytest

    spec = lab if isinstance(lab, LabSpec) else find_lab(lab)
    return [pytest.param(check, id=check.id) for check in spec.checks]
