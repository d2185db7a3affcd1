"""Train the flight-delay model: the data scientist's part.

    python -m app.train --data DATA --out MODEL

TODO: load the training months with autograder.data.load_flights("train", DATA), build
features from what a travel app knows before departure (see app/contract.py), fit a model,
choose a threshold on the validation months and save everything serving needs to MODEL, with
autograder.data.dataset_id(DATA): /version reports it as training_data_id.
"""

import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()
print(f"TODO: train a model on {args.data} and save it to {args.out}")
