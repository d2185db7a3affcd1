"""The ML Test Score rubric (Breck et al., 2017), which every check names a test of.

"The ML Test Score: A Rubric for ML Production Readiness and Technical Debt Reduction",
IEEE Big Data 2017, https://research.google/pubs/the-ml-test-score-a-rubric-for-ml-production-readiness-and-technical-debt-reduction/
The short titles below are ours; the numbering follows the paper's four sections of seven tests.
"""

from __future__ import annotations

SECTIONS: dict[str, str] = {
    "Data": "Tests for features and data",
    "Model": "Tests for model development",
    "Infra": "Tests for ML infrastructure",
    "Monitor": "Monitoring tests for ML",
}

TESTS: dict[str, str] = {
    "Data 1": "Feature expectations are captured in a schema",
    "Data 2": "All features are beneficial",
    "Data 3": "No feature's cost is too much",
    "Data 4": "Features adhere to meta-level requirements",
    "Data 5": "The data pipeline has appropriate privacy controls",
    "Data 6": "New features can be added quickly",
    "Data 7": "All input feature code is tested",
    "Model 1": "Model specs are reviewed and submitted",
    "Model 2": "Offline and online metrics correlate",
    "Model 3": "All hyperparameters have been tuned",
    "Model 4": "The impact of model staleness is known",
    "Model 5": "A simpler model is not better",
    "Model 6": "Model quality is sufficient on important data slices",
    "Model 7": "The model is tested for considerations of inclusion",
    "Infra 1": "Training is reproducible",
    "Infra 2": "Model specs are unit tested",
    "Infra 3": "The ML pipeline is integration tested",
    "Infra 4": "Model quality is validated before serving",
    "Infra 5": "The model is debuggable",
    "Infra 6": "Models are canaried before serving",
    "Infra 7": "Serving models can be rolled back",
    "Monitor 1": "Dependency changes result in notification",
    "Monitor 2": "Data invariants hold for inputs",
    "Monitor 3": "Training and serving are not skewed",
    "Monitor 4": "Models are not too stale",
    "Monitor 5": "Models are numerically stable",
    "Monitor 6": "Computing performance has not regressed",
    "Monitor 7": "Prediction quality has not regressed",
}


def section_of(test: str) -> str:
    return test.split(" ", 1)[0]


def title(test: str) -> str:
    return TESTS.get(test, "")
