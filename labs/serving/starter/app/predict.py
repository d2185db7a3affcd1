"""Offline batch prediction, used to prove there is no training/serving skew.

    python -m app.predict --model model.joblib --input rows.csv --output predictions.csv

rows.csv has the columns of the lab README ("Offline predict"); write predictions.csv with a
delay_probability column, one row per input row, in order.
"""

import sys

sys.exit("TODO: offline prediction is not written yet (see the lab README, 'Offline predict')")
