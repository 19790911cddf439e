"""The event contract: typed models for every message on RTML's Kafka topics.

Events travel as UTF-8 JSON carrying ``schema_version``. Decoding is strict (a
string where a number belongs is an error, not a coercion) because a bad event
must be dead-lettered with a reason, never silently reinterpreted.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

SCHEMA_VERSION = 1
MAX_EVENT_BYTES = 64 * 1024  # a card event is < 1 KiB; anything this large is an attack or a bug

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Timestamp = Annotated[AwareDatetime, Field(strict=False)]


class Topics:
    """Topic names of the contract."""

    TRANSACTIONS = "rtml.transactions"
    LABELS = "rtml.labels"
    PREDICTIONS = "rtml.predictions"
    MODEL_EVENTS = "rtml.model-events"
    TRAINING_REQUESTS = "rtml.training-requests"
    DLQ = "rtml.dlq"

    ALL = (TRANSACTIONS, LABELS, PREDICTIONS, MODEL_EVENTS, TRAINING_REQUESTS, DLQ)


class InternalTopics:
    """Topics between the feature service's stages (docs/features.md, Scaling); not part of the
    contract, so producers and readers outside the feature service must not rely on them."""

    MERCHANT_EVENTS = "rtml.merchant-events"  # key merchant_id: accepted transactions, attributed labels
    TRANSACTION_MERCHANTS = "rtml.transaction-merchants"  # key transaction_id: co-partitioned with rtml.labels

    ALL = (MERCHANT_EVENTS, TRANSACTION_MERCHANTS)


class EventError(ValueError):
    """An event failed validation; ``field`` names the offending field (or ``<event>``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Event(BaseModel):
    """Base of every event: strict types, UTC timestamps, a schema version."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    schema_version: Literal[1] = 1

    @field_validator("timestamp", mode="after", check_fields=False)
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


class Transaction(Event):
    transaction_id: Identifier
    user_id: Identifier
    merchant_id: Identifier
    amount: float = Field(gt=0, le=1_000_000, allow_inf_nan=False)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    country: str = Field(pattern=r"^[A-Z]{2}$")
    channel: Literal["web", "pos", "app"]
    device_id: Identifier | None = None
    timestamp: Timestamp


class Label(Event):
    transaction_id: Identifier
    is_fraud: bool
    timestamp: Timestamp


Decision = Literal["approve", "review", "decline"]


class PredictionLog(Event):
    """What the inference service saw and answered for one transaction."""

    transaction_id: Identifier
    request: Transaction
    features: dict[str, float | None]
    features_missing: list[str] = Field(default_factory=list)
    fraud_probability: float = Field(ge=0, le=1)
    decision: Decision
    model_version: str
    latency_ms: float = Field(ge=0)
    timestamp: Timestamp


class ModelEvent(Event):
    """A model became (or stopped being) the champion."""

    event: Literal["promoted", "rolled_back"]
    model_name: str
    version: str
    artifact_uri: str
    previous_version: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    timestamp: Timestamp


class TrainingRequest(Event):
    """Why a training run is wanted, with the evidence behind it."""

    request_id: Identifier
    reason: Literal["drift", "quality", "schedule", "manual"]
    evidence: dict[str, Any] = Field(default_factory=dict)
    requested_by: str = "unknown"
    timestamp: Timestamp


EVENT_TYPES: dict[str, type[Event]] = {
    "transaction": Transaction,
    "label": Label,
    "prediction_log": PredictionLog,
    "model_event": ModelEvent,
    "training_request": TrainingRequest,
}

E = TypeVar("E", bound=Event)


def _first_error(exc: ValidationError) -> EventError:
    err = exc.errors(include_url=False)[0]
    field = ".".join(str(p) for p in err["loc"]) or "<event>"
    return EventError(field, err["msg"])


def decode(model: type[E], raw: bytes | str) -> E:
    """Parse one event from JSON bytes; raise EventError naming the field and the reason."""
    if isinstance(raw, bytes | bytearray) and len(raw) > MAX_EVENT_BYTES:
        raise EventError("<event>", f"payload of {len(raw)} bytes exceeds {MAX_EVENT_BYTES}")
    if isinstance(raw, bytes) and b"NaN" not in raw and b"Infinity" not in raw:
        # Fast path, one parse: a valid event validates straight from its bytes (the model pins
        # schema_version to 1); anything else takes the path below for its exact reason.
        try:
            return model.model_validate_json(raw)
        except ValueError:
            pass
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventError("<event>", f"not valid UTF-8 JSON ({exc})") from None
    return validate(model, payload)


def validate(model: type[E], payload: Any) -> E:
    """Validate an already-parsed JSON value (e.g. an HTTP body) as ``model``."""
    if not isinstance(payload, dict):
        raise EventError("<event>", f"expected a JSON object, got {type(payload).__name__}")
    version = payload.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise EventError("schema_version", f"unsupported schema_version {version!r}; this build reads {SCHEMA_VERSION}")
    try:
        # JSON-mode validation: strict types, but ISO strings are accepted for datetimes.
        return model.model_validate_json(json.dumps(payload, allow_nan=False))
    except ValueError as exc:  # includes ValidationError and NaN/inf rejected by json.dumps
        if isinstance(exc, ValidationError):
            raise _first_error(exc) from None
        raise EventError("<event>", str(exc)) from None


def encode(event: Event) -> bytes:
    return event.to_json()


def is_finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def export_json_schemas(directory: Path) -> list[Path]:
    """Write one JSON Schema per event type; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in EVENT_TYPES.items():
        path = directory / f"{name}.schema.json"
        schema = model.model_json_schema(mode="serialization")
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
