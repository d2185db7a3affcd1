"""The minimal FastAPI app the serving benchmarks compare against (one POST endpoint)."""

from fastapi import FastAPI

app = FastAPI()


@app.post("/predict")
async def predict(body: dict) -> dict:
    return {"delay_probability": 0.5, "delayed": True, "threshold": 0.5, "model_version": "minimal"}
