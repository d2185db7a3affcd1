"""Offline batch prediction, used to prove there is no training/serving skew.

    python -m app.predict --model MODEL --data DATA --input rows.csv --output predictions.csv

rows.csv holds flights in the flights table's own layout (lab README, "Offline predict"): build
their features with the same code as training, joining the weather from DATA. Write
predictions.csv with a delay_probability column, one row per input row, in order.
"""

import sys

sys.exit("TODO: offline prediction is not written yet (see the lab README, 'Offline predict')")
