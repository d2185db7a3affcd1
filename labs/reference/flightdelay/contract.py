"""The serving lab's API contract: what a travel app sends, and what the service answers.

Every team's service implements this contract, so that the autograder can test any of them.
Teams may add endpoints and optional response fields; they may not change these.

- ``POST /predict`` takes one :class:`FlightRequest` and answers a :class:`Prediction`.
- ``GET /health`` answers 200 only once the model is loaded and answering, 503 before.
- ``GET /version`` answers a :class:`ModelInfo`, which names the model file and training data.
- ``GET /openapi.json`` is the OpenAPI document (FastAPI serves it).

Bad input gets a 4xx (422 for a body that breaks this contract) with a message that names
the field, never a 5xx.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CARRIERS: tuple[str, ...] = (
    "9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV",
)
"""The carriers of the airlines table. A valid carrier may be missing from the training data."""

Carrier = Literal["9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV"]
Origin = Literal["EWR", "JFK", "LGA"]


class Weather(BaseModel):
    """Weather at the origin airport in the departure hour; any field may be unknown (null)."""

    model_config = ConfigDict(extra="forbid")

    temp: Annotated[float | None, Field(ge=-60, le=130, description="temperature, °F")] = None
    dewp: Annotated[float | None, Field(ge=-80, le=100, description="dew point, °F")] = None
    humid: Annotated[float | None, Field(ge=0, le=100, description="relative humidity, %")] = None
    wind_dir: Annotated[float | None, Field(ge=0, le=360, description="wind direction, degrees")] = None
    wind_speed: Annotated[float | None, Field(ge=0, le=200, description="wind speed, mph")] = None
    wind_gust: Annotated[float | None, Field(ge=0, le=250, description="gust speed, mph")] = None
    precip: Annotated[float | None, Field(ge=0, le=20, description="precipitation, inches")] = None
    pressure: Annotated[float | None, Field(ge=850, le=1100, description="sea level pressure, millibars")] = None
    visib: Annotated[float | None, Field(ge=0, le=10, description="visibility, miles")] = None


class FlightRequest(BaseModel):
    """One scheduled flight out of New York, as a travel app knows it before departure."""

    model_config = ConfigDict(extra="forbid")

    carrier: Annotated[Carrier, Field(description="two-letter carrier code, e.g. UA")]
    origin: Annotated[Origin, Field(description="New York airport: EWR, JFK or LGA")]
    dest: Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="destination FAA airport code, e.g. ORD")]
    scheduled_departure: Annotated[
        datetime, Field(description="scheduled departure, New York local time, ISO 8601 without offset")
    ]
    distance: Annotated[float, Field(gt=0, le=6000, description="great-circle distance, miles")]
    flight: Annotated[int | None, Field(ge=1, le=9999, description="flight number")] = None
    weather: Weather | None = None

    @field_validator("scheduled_departure")
    @classmethod
    def _local_time(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError("give New York local time without a UTC offset, e.g. 2013-09-02T17:45:00")
        return value


class Prediction(BaseModel):
    """The service's answer for one flight."""

    delay_probability: Annotated[float, Field(ge=0, le=1, description="probability of arriving 15+ minutes late")]
    delayed: Annotated[bool, Field(description="true when delay_probability >= threshold")]
    threshold: Annotated[float, Field(ge=0, le=1, description="the decision threshold in use")]
    model_version: Annotated[str, Field(min_length=1, description="which model answered")]


class ModelInfo(BaseModel):
    """What ``GET /version`` answers.

    ``model_sha256`` and ``training_data_id`` tie the served model to one training run: the
    SHA-256 of the model file the service loaded (the file ``train`` wrote at ``{model}``), and
    the ``id`` of the data it was trained on (``{data}/EXPORT.json``, read with
    ``autograder.data.dataset_id``).
    """

    model_config = ConfigDict(protected_namespaces=())

    model_version: Annotated[str, Field(min_length=1)]
    threshold: float
    model_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the loaded model file")]
    training_data_id: Annotated[str, Field(min_length=1, description="the id of the data the model was trained on")]
    trained_rows: int = 0
    validation: dict[str, float] = {}


class Health(BaseModel):
    status: Literal["ok", "loading"]
    model_version: str = ""
