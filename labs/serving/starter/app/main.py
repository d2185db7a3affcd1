"""The team's service. It starts and answers health, but does not yet serve a model.

    python -m app.main --port 8000 --data DATA --model MODEL

TODO (software engineer): validate the request with app.contract.FlightRequest.
TODO (data scientist + operator): load the trained model at start-up and use it in /predict;
/version must name that model file (its SHA-256) and the data it was trained on (lab README).
"""

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI

app = FastAPI(title="Flight delay predictor (starter)")
THRESHOLD = 0.5


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/version")
def version() -> dict[str, Any]:
    return {"model_version": "starter-constant", "threshold": THRESHOLD}


@app.post("/predict")
def predict(flight: dict[str, Any]) -> dict[str, Any]:
    probability = 0.2  # TODO: the share of late flights is not a prediction
    return {
        "delay_probability": probability,
        "delayed": probability >= THRESHOLD,
        "threshold": THRESHOLD,
        "model_version": "starter-constant",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data")
    parser.add_argument("--model", help="the model file train wrote (TODO: load it at start-up)")
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
