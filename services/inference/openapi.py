"""The OpenAPI 3 document of the scoring API, generated from the pydantic models it validates with.

The scoring routes are plain Starlette handlers (see http_api), so BentoML's own
OpenAPI page does not list them. This document is built from ``Transaction`` (the
event contract) and the answer models below, so the published schema and the
validation the service applies cannot drift apart.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from services.common.events import Decision, Transaction

from .request_body import EXPLAIN_FIELD, MAX_BATCH_TRANSACTIONS

_REF = "#/components/schemas/{model}"


class PredictRequest(Transaction):
    """A /predict body: the Transaction fields, plus an optional ``explain`` flag."""

    explain: bool = Field(
        default=False,
        description="Also return `explanation`: the decision's top feature contributions (baseline Shapley values)",
    )


assert EXPLAIN_FIELD in PredictRequest.model_fields  # the parser and the schema name the same field


class Contribution(BaseModel):
    """One feature's share of ``fraud_probability - p(average transaction)``."""

    model_config = ConfigDict(extra="forbid")

    feature: str = Field(description="Model input name, e.g. txn_device_is_new")
    value: float = Field(description="Its value in this decision")
    contribution: float = Field(description="Its effect on the fraud probability (positive pushes towards fraud)")


class PredictionAnswer(BaseModel):
    """One scored transaction (``Scored.answer()`` builds exactly these keys)."""

    model_config = ConfigDict(extra="forbid")

    transaction_id: str
    fraud_probability: float = Field(ge=0, le=1)
    decision: Decision
    model_version: str
    features_missing: list[str] = Field(description="Stored features the online store lacked (defaults were used)")
    explanation: list[Contribution] | None = Field(
        default=None, description="Only when the request set explain: the top contributions, largest first"
    )


class BatchRequest(BaseModel):
    transactions: list[Transaction] = Field(min_length=1, max_length=MAX_BATCH_TRANSACTIONS)


class BatchAnswer(BaseModel):
    predictions: list[PredictionAnswer] = Field(description="One answer per transaction, in request order")


class ErrorAnswer(BaseModel):
    """A refused request: ``field`` names the culprit (a JSON path, ``body`` or a header)."""

    error: str
    field: str | None = None
    reason: str | None = None


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = _json(_REF.format(model="ErrorAnswer"), description)
    if headers:
        answer["headers"] = headers
    return answer


def _operation(summary: str, request_model: str, answer_model: str) -> dict[str, Any]:
    retry_after = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds before retrying"}}
    return {
        "summary": summary,
        "security": [{"bearer": []}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=request_model)}}},
        },
        "responses": {
            "200": _json(_REF.format(model=answer_model), "Scored"),
            "400": _error("Body is not a JSON value (field: body)"),
            "401": _error(
                "Missing or wrong bearer token (field: Authorization)",
                {"WWW-Authenticate": {"schema": {"type": "string"}}},
            ),
            "413": _error("Body too large (field: body)"),
            "415": _error("Not JSON (field: Content-Type)"),
            "422": _error("A field is invalid; field names it (e.g. amount, transactions[3].amount)"),
            "503": _error("No model loaded yet, or the online feature store is unreachable", retry_after),
        },
    }


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The document served at ``GET /openapi.json``."""
    _, defs = models_json_schema(
        [
            (Transaction, "validation"),
            (PredictRequest, "validation"),
            (BatchRequest, "validation"),
            (PredictionAnswer, "serialization"),
            (BatchAnswer, "serialization"),
            (ErrorAnswer, "serialization"),
        ],
        ref_template=_REF,
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "RTML fraud scoring API",
            "version": "1",
            "description": "Scores card transactions with the champion model and fresh online features.",
        },
        "paths": {
            "/predict": {"post": _operation("Score one transaction", "PredictRequest", "PredictionAnswer")},
            "/predict_batch": {"post": _operation("Score up to 1000 transactions", "BatchRequest", "BatchAnswer")},
        },
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
