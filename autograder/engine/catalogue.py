"""The check catalogue: from the import path a ``lab.toml`` names to the check function, its
parameter model, its code location and its test.

A lab names each check as ``package.module:check_<property>`` (for the kit's own checks,
``autograder.checks.<lab>:check_<property>``), so a reader goes from ``lab.toml`` to the code in
one hop. The kit's checks live in the modules of :mod:`autograder.checks`.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from autograder.checkapi import CheckFunction, Params, params_model
from autograder.errors import ShipmlError, explain_validation
from autograder.paths import KIT_ROOT, TESTS_DIR

CHECKS_PACKAGE = "autograder.checks"


def resolve(name: str) -> CheckFunction:
    """The check function ``module:function`` names, or a one-line error."""
    module_name, sep, attr = name.partition(":")
    if not sep or not module_name or not attr:
        raise ShipmlError(f"check '{name}' must be named as module:function, e.g. autograder.checks.serving:check_api_contract")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ShipmlError(f"check '{name}': no module {exc.name!r}; fix the import path (see 'shipml checks LAB')") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ShipmlError(f"check '{name}': {module_name} has no function {attr}; fix the name (see 'shipml checks LAB')")
    return fn  # type: ignore[no-any-return]


def validate_params(name: str, raw: dict[str, Any]) -> Params:
    """``raw`` (a lab.toml ``params`` table) as the check's parameter model.

    Raises ValueError with one line naming the field, so the spec loader can add the file.
    """
    fn = resolve(name)
    try:
        model = params_model(fn)
    except TypeError as exc:
        raise ShipmlError(str(exc)) from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problem = explain_validation(exc, where="params.{}", top="params", model=model, unknown=f"is not a parameter of {fn.__name__}")
        raise ValueError(problem) from None


def all_checks() -> dict[str, CheckFunction]:
    """Every check function in the kit's catalogue, by its import path."""
    package = importlib.import_module(CHECKS_PACKAGE)
    found: dict[str, CheckFunction] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{CHECKS_PACKAGE}.{info.name}")
        for attr, value in vars(module).items():
            if attr.startswith("check_") and inspect.isfunction(value) and value.__module__ == module.__name__:
                found[f"{module.__name__}:{attr}"] = value
    return found


@dataclass(frozen=True)
class Location:
    """Where a check's code and its fast test are, relative to the kit's root."""

    code: str
    test: str


def relative(path: Path) -> str:
    """``path`` relative to the kit's root, when it lies inside it."""
    try:
        return str(path.resolve().relative_to(KIT_ROOT))
    except ValueError:
        return str(path)


@cache
def _test_functions() -> dict[str, list[str]]:
    """test function name -> ``file::name``, for every test module of the kit (read with ast)."""
    found: dict[str, list[str]] = {}
    for file in sorted(TESTS_DIR.glob("test_*.py")) if TESTS_DIR.is_dir() else []:
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
                found.setdefault(node.name, []).append(f"{relative(file)}::{node.name}")
    return found


def locate(name: str) -> Location:
    """The check's source line, and its fast test: a test function named ``test_<function>``
    (optionally with a suffix) in the kit's tests."""
    fn = resolve(name)
    code = f"{relative(Path(inspect.getsourcefile(fn) or '?'))}:{inspect.getsourcelines(fn)[1]}"
    tests = [t for test, where in _test_functions().items() if test == f"test_{fn.__name__}" or test.startswith(f"test_{fn.__name__}_") for t in where]
    return Location(code=code, test=tests[0] if tests else "")
