"""Where the kit's own folders are: computed once, here, for every module that needs them."""

from __future__ import annotations

from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
"""The kit's checkout (the folder that holds ``autograder/``, ``labs/``, ``datasets/``)."""
LABS_DIR = KIT_ROOT / "labs"
DATASETS_DIR = KIT_ROOT / "datasets"
FLIGHTS_DIR = DATASETS_DIR / "flights"
BOOK_DIR = KIT_ROOT / "book"
SLIDES_DIR = KIT_ROOT / "slides"
TESTS_DIR = KIT_ROOT / "tests"
