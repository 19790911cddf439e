"""The event contract: validation names the field, JSON round-trips, schemas are exported and current."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from services.common.events import (
    EVENT_TYPES,
    EventError,
    Label,
    ModelEvent,
    PredictionLog,
    TrainingRequest,
    Transaction,
    decode,
    export_json_schemas,
)

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def sample_events() -> dict[str, object]:
    txn = Transaction(
        transaction_id="t-1", user_id="u-1", merchant_id="m-1", amount=12.5, currency="EUR",
        country="DE", channel="web", device_id="d-1", timestamp=NOW,
    )
    return {
        "transaction": txn,
        "label": Label(transaction_id="t-1", is_fraud=True, timestamp=NOW),
        "prediction_log": PredictionLog(
            transaction_id="t-1", request=txn, features={"user_txn_count_1h": 3.0, "x": None},
            features_missing=["x"], fraud_probability=0.7, decision="review", model_version="v0001",
            latency_ms=1.5, timestamp=NOW,
        ),
        "model_event": ModelEvent(
            event="promoted", model_name="fraud", version="v0002", artifact_uri="file:///tmp/a",
            previous_version="v0001", metrics={"pr_auc": 0.8}, timestamp=NOW,
        ),
        "training_request": TrainingRequest(
            request_id="r-1", reason="drift", evidence={"psi": {"amount": 0.4}}, requested_by="monitor", timestamp=NOW
        ),
    }


def test_every_event_type_round_trips_json() -> None:
    for name, event in sample_events().items():
        raw = event.to_json()  # type: ignore[attr-defined]
        assert json.loads(raw)["schema_version"] == 1
        assert decode(EVENT_TYPES[name], raw) == event


def test_contract_example_transaction_parses() -> None:
    raw = (
        b'{"schema_version": 1, "transaction_id": "t-9", "user_id": "u-9", "merchant_id": "m-9", "amount": 12.5,'
        b' "currency": "EUR", "country": "DE", "channel": "pos", "timestamp": "2026-11-22T03:00:00Z"}'
    )
    txn = decode(Transaction, raw)
    assert txn.device_id is None and txn.timestamp == NOW


GOOD = json.loads(sample_events()["transaction"].to_json())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"amount": "12.5"}, "amount"),
        ({"amount": -3}, "amount"),
        ({"amount": 0}, "amount"),
        ({"channel": "fax"}, "channel"),
        ({"currency": "euro"}, "currency"),
        ({"country": "Germany"}, "country"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": "2026-11-22T03:00:00"}, "timestamp"),  # no timezone: ambiguous, refused
        ({"user_id": ""}, "user_id"),
        ({"user_id": "u 1; drop"}, "user_id"),
        ({"schema_version": 2}, "schema_version"),
        ({"transaction_id": None}, "transaction_id"),
    ],
)
def test_invalid_transaction_names_field(patch: dict[str, object], field: str) -> None:
    with pytest.raises(EventError) as info:
        decode(Transaction, json.dumps({**GOOD, **patch}).encode())
    assert info.value.field == field


@pytest.mark.parametrize("missing", ["transaction_id", "user_id", "merchant_id", "amount", "timestamp"])
def test_missing_field_is_named(missing: str) -> None:
    body = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(EventError) as info:
        decode(Transaction, json.dumps(body).encode())
    assert info.value.field == missing and "required" in info.value.reason.lower()


@pytest.mark.parametrize(
    "raw", [b"{not json", b"\xff\xfe", b"[1,2]", b'"text"', b"x" * 70_000, b'{"amount": NaN}']
)
def test_unparseable_payloads_are_event_errors(raw: bytes) -> None:
    with pytest.raises(EventError) as info:
        decode(Transaction, raw)
    assert info.value.field in ("<event>", "amount", "transaction_id")


def test_timestamps_are_normalised_to_utc() -> None:
    body = {**GOOD, "timestamp": "2026-11-22T04:00:00+01:00"}
    assert decode(Transaction, json.dumps(body).encode()).timestamp == NOW


def test_exported_schemas_are_current_and_validate_samples(tmp_path: Path) -> None:
    fresh = export_json_schemas(tmp_path)
    for path in fresh:
        committed = SCHEMA_DIR / path.name
        assert committed.exists(), f"{committed} missing: run `rtml schemas`"
        assert committed.read_text() == path.read_text(), f"{committed} is stale: run `rtml schemas`"
    for name, event in sample_events().items():
        schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
        jsonschema.validate(json.loads(event.to_json()), schema)  # type: ignore[attr-defined]
