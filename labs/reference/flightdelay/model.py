"""The reference model, its two baselines, and how they are scored.

Every model here is a scikit-learn Pipeline that takes the model input of
:func:`flightdelay.features.model_input` and gives ``predict_proba(...)[:, 1]``, the
probability that the flight arrives 15 or more minutes late.

* :func:`build_pipeline`: the reference. Feature step, then a ColumnTransformer (carrier,
  origin and dest as ordinal codes, unseen values as missing; numbers as they are), then a
  HistGradientBoostingClassifier with native categorical and missing-value support.
* :func:`build_majority_baseline`: always the most frequent class (on time).
* :func:`build_logistic_baseline`: logistic regression on carrier, origin, departure hour
  and distance, no weather: what a quick first model would be.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from flightdelay.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES, make_features

RANDOM_STATE = 0
DEFAULT_PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "max_iter": 300,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "early_stopping": False,  # a fixed number of trees: no internal random split
    "random_state": RANDOM_STATE,
}
"""Parameters of the reference classifier (chosen once on the validation period)."""


def _features_step() -> FunctionTransformer:
    return FunctionTransformer(make_features, validate=False, check_inverse=False)


def build_pipeline(params: dict[str, Any] | None = None) -> Pipeline:
    """The reference model: features, ColumnTransformer, HistGradientBoostingClassifier."""
    columns = ColumnTransformer(
        [
            ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value",
                                           unknown_value=np.nan, encoded_missing_value=np.nan,
                                           dtype=np.float64), list(CATEGORICAL_FEATURES)),
            ("numeric", "passthrough", list(NUMERIC_FEATURES)),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    n_categorical = len(CATEGORICAL_FEATURES)
    classifier = HistGradientBoostingClassifier(
        categorical_features=list(range(n_categorical)), **{**DEFAULT_PARAMS, **(params or {})}
    )
    return Pipeline([("features", _features_step()), ("columns", columns),
                     ("classifier", classifier)])


def build_majority_baseline() -> Pipeline:
    """Predicts the most frequent training class for every flight (probability 0 or 1)."""
    return Pipeline([("features", _features_step()),
                     ("classifier", DummyClassifier(strategy="most_frequent"))])


def build_logistic_baseline() -> Pipeline:
    """Logistic regression on carrier, origin (one-hot), departure hour and distance."""
    columns = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), ["carrier", "origin"]),
            ("numeric", StandardScaler(), ["dep_hour", "distance"]),
        ],
        remainder="drop",
    )
    classifier = LogisticRegression(max_iter=1000, random_state=RANDOM_STATE)
    return Pipeline([("features", _features_step()), ("columns", columns),
                     ("classifier", classifier)])


def choose_threshold(y_true: np.ndarray, proba: np.ndarray) -> float:
    """The decision threshold that maximises F1 (on validation data, not on training data)."""
    precision, recall, thresholds = precision_recall_curve(y_true, proba)
    if len(thresholds) == 0:
        return 0.5
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def evaluate(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Precision, recall and F1 at ``threshold`` (late when proba >= threshold), ROC AUC, PR AUC.

    PR AUC is average precision. A constant score gives ROC AUC 0.5 and PR AUC equal to
    the share of late flights, the level any real model must beat.
    """
    y_true = np.asarray(y_true, dtype=bool)
    proba = np.asarray(proba, dtype=np.float64)
    predicted = proba >= threshold
    both = len(np.unique(y_true)) == 2
    return {
        "threshold": float(threshold),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, proba)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y_true, proba)) if both else float("nan"),
        "late_rate": float(y_true.mean()) if len(y_true) else float("nan"),
        "rows": int(len(y_true)),
    }
