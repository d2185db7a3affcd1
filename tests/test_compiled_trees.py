"""The reference service's tree walks give exactly scikit-learn's probabilities."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REFERENCE = Path(__file__).resolve().parent.parent / "labs" / "reference"
sys.path.insert(0, str(REFERENCE))

from flightdelay.compiled import CompiledTrees, _walk_numba  # noqa: E402
from flightdelay.features import model_input  # noqa: E402
from flightdelay.model import build_pipeline  # noqa: E402

from autograder.data import late_label, load_flights, load_weather  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    flights = load_flights("train")
    flights = flights[late_label(flights).notna()].sample(6000, random_state=1)
    weather = load_weather()
    pipeline = build_pipeline({"max_iter": 60}).fit(model_input(flights, weather), late_label(flights).astype(int))
    rows = load_flights("validation").head(3000)
    features = np.asarray(pipeline[:-1].transform(model_input(rows, weather)), dtype=np.float64)
    # Missing and unknown values on every kind of feature: NaN codes, NaN weather, an unseen code.
    features[:50, 0] = np.nan
    features[50:100, 2] = np.nan
    features[100:150, 7:] = np.nan
    features[150:160, 2] = 250
    return pipeline.named_steps["classifier"], features


def test_numpy_walk_equals_predict_proba(fitted):
    clf, features = fitted
    expected = clf.predict_proba(features)[:, 1]
    assert np.array_equal(CompiledTrees(clf).predict(features), expected)


def test_compiled_walk_equals_predict_proba(fitted):
    clf, features = fitted
    assert _walk_numba is not None, "numba is a kit dependency; the fast path must be compiled"
    expected = clf.predict_proba(features)[:, 1]
    assert np.array_equal(CompiledTrees(clf).predict_fast(features), expected)
    assert CompiledTrees(clf).predict_one(features[0]) == expected[0]
