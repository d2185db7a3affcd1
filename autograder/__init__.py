"""shipml's autograder: checks a team's running ML system, and reports the scores."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from autograder.errors import ShipmlError

try:
    __version__ = version("shipml")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"

__all__ = ["ShipmlError", "__version__"]
