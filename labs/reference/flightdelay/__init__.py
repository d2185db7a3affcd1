"""flightdelay: the instructor team's reference flight-delay predictor (cumulative, lab by lab).

Predicts whether a scheduled flight out of New York arrives 15 or more minutes late.

    python -m flightdelay.train --data DIR --out model.joblib
    python -m flightdelay.predict --model model.joblib --input rows.csv --output preds.csv

Modules: ``features`` (model input and features), ``model`` (pipelines, baselines, metrics),
``train`` and ``predict`` (the command lines). Later labs add the service next to them.
"""

__version__ = "0.1.0"
