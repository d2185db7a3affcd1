"""The reference flight-delay service: the serving lab's API contract over the trained model.

    python -m flightdelay.service --model model.joblib --data DATA --port 8000

The hot path avoids the per-call cost of a pandas Pipeline and of scikit-learn's predict
(about 3 ms each, measured on the course machines): each request becomes one float64 feature row, built exactly as
``flightdelay.features.make_features`` and the fitted ColumnTransformer build it, and the
boosted trees are walked by ``flightdelay.compiled`` (numba-compiled, about 15 microseconds a
row; it is compiled during start-up, before health says ok). Concurrent
requests are queued into micro-batches and predicted together in one vectorised walk. The lab's skew check proves that this path gives the offline pipeline's
probabilities.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse

from flightdelay.compiled import CompiledTrees
from flightdelay.contract import FlightRequest, Health, ModelInfo, Prediction
from flightdelay.features import WEATHER_FIELDS
from flightdelay.predict import load_model


class Model:
    """A loaded bundle with a DataFrame-free feature path for single requests."""

    def __init__(self, bundle: dict[str, Any], airports: set[str]) -> None:
        self.bundle = bundle
        self.version: str = bundle["model_version"]
        self.threshold = float(bundle["threshold"])
        pipeline = bundle["pipeline"]
        self.classifier = pipeline.named_steps["classifier"]
        encoder = pipeline.named_steps["columns"].named_transformers_["categorical"]
        # OrdinalEncoder codes, the unknown ones become NaN exactly as handle_unknown does.
        self.codes = [{str(c): float(i) for i, c in enumerate(cats)} for cats in encoder.categories_]
        self.airports = airports
        try:
            self.compiled: CompiledTrees | None = CompiledTrees(self.classifier)
        except (AttributeError, ValueError):  # not a boosted-trees model: use its own predict
            self.compiled = None

    def features(self, req: FlightRequest) -> list[float]:
        when = req.scheduled_departure  # New York local time, as training used
        weather = req.weather.model_dump() if req.weather is not None else {}
        row = [self.codes[i].get(value, np.nan) for i, value in enumerate((req.carrier, req.origin, req.dest))]
        row += [float(when.hour), float(when.hour * 60 + when.minute), float(when.weekday()), float(req.distance)]
        row += [np.nan if weather.get(name) is None else float(weather[name]) for name in WEATHER_FIELDS]
        return row

    def predict(self, rows: list[list[float]]) -> np.ndarray:
        matrix = np.asarray(rows, dtype=np.float64)
        if self.compiled is not None:
            return self.compiled.predict_fast(matrix)
        return self.classifier.predict_proba(matrix)[:, 1]


class MicroBatcher:
    """Collects the requests that arrive while the model is busy and predicts them together."""

    def __init__(self, model: Model, max_batch: int = 64) -> None:
        self.model = model
        self.max_batch = max_batch
        self.queue: asyncio.Queue[tuple[list[float], asyncio.Future[float]]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                # About half a millisecond for a whole batch: cheaper inline than a thread hop.
                proba = self.model.predict([row for row, _ in batch])
                for (_, future), p in zip(batch, proba, strict=True):
                    future.set_result(float(p))
            except Exception as exc:  # noqa: BLE001 - hand the error to every waiting request
                for _, future in batch:
                    future.set_exception(exc)

    async def predict(self, row: list[float]) -> float:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        await self.queue.put((row, future))
        return await future


def create_app(model_path: Path, data_dir: Path | None = None) -> FastAPI:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Load and warm the model before the server accepts a connection: health never lies.
        from autograder.data import load_airports, load_flights

        # The airports table lacks a few destinations (e.g. BQN, SJU in Puerto Rico): a code is
        # known when it is in that table or is a destination of any flight in the data.
        airports = set(load_airports(data_dir)["faa"].astype(str)) | set(load_flights("public", data_dir)["dest"].astype(str))
        model = Model(load_model(model_path), airports)
        model.predict([[0.0] * (7 + len(WEATHER_FIELDS))])
        batcher = MicroBatcher(model)
        batcher.task = asyncio.create_task(batcher.run())
        state.update(model=model, batcher=batcher)
        yield
        batcher.task.cancel()

    app = FastAPI(title="Flight delay predictor", version="1.0", lifespan=lifespan)

    @app.post("/predict", response_model=Prediction)
    async def predict(req: FlightRequest) -> Prediction:
        model: Model = state["model"]
        if req.dest not in model.airports:
            raise HTTPException(422, f"dest: unknown airport code {req.dest!r}; use an FAA code of the airports table")
        p = await state["batcher"].predict(model.features(req))
        return Prediction(delay_probability=p, delayed=p >= model.threshold, threshold=model.threshold, model_version=model.version)

    @app.get("/health", response_model=Health)
    async def health() -> Any:
        if "model" not in state:
            return JSONResponse({"status": "loading", "model_version": ""}, status_code=503)
        return Health(status="ok", model_version=state["model"].version)

    @app.get("/version", response_model=ModelInfo)
    async def version() -> ModelInfo:
        model: Model = state["model"]
        b = model.bundle
        metrics = {k: float(v) for k, v in b.get("validation_metrics", {}).items() if isinstance(v, int | float)}
        return ModelInfo(
            model_version=model.version, threshold=model.threshold, model_sha256=file_sha256(model_path),
            training_data_id=b.get("training_data_id") or "unknown", trained_rows=int(b.get("train_rows", 0)), validation=metrics,
        )

    return app


@functools.cache
def file_sha256(path: Path) -> str:
    """The SHA-256 of the model file this service loaded (read once)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flightdelay.service", description="Serve the flight-delay model over HTTP.")
    parser.add_argument("--model", type=Path, required=True, help="bundle written by flightdelay.train")
    parser.add_argument("--data", type=Path, default=None, help="flight data folder (for the airports table)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"flightdelay.service: error: {args.model}: no such model file; train one with python -m flightdelay.train", file=sys.stderr)
        return 2
    import uvicorn

    uvicorn.run(create_app(args.model, args.data), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
