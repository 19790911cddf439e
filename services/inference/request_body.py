"""Turning an HTTP body into validated Transactions, or a RequestError naming what is wrong."""

from __future__ import annotations

import json
from typing import Any, Final

from pydantic import ValidationError

from services.common.events import EventError, Transaction, validate

MAX_SINGLE_BODY_BYTES: Final = 64 * 1024
MAX_BATCH_BODY_BYTES: Final = 2 * 1024 * 1024
MAX_BATCH_TRANSACTIONS: Final = 1000
EXPLAIN_FIELD: Final = "explain"  # /predict only: ask for the decision's top feature contributions


class RequestError(Exception):
    """A request the service refuses; ``status`` is a 4xx code and ``field`` names the culprit."""

    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.status = status
        self.field = field
        self.reason = reason

    def as_json(self) -> dict[str, str]:
        return {"error": f"{self.field}: {self.reason}", "field": self.field, "reason": self.reason}


def check_content_type(content_type: str | None) -> None:
    """JSON only; a missing header is read as JSON (plain clients often omit it)."""
    if content_type is None:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise RequestError(415, "Content-Type", f"expected application/json, got {media or 'nothing'!r}")


def check_size(length: int, limit: int) -> None:
    if length > limit:
        raise RequestError(413, "body", f"{length} bytes exceeds the limit of {limit}")


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid JSON number")


def _load_json(body: bytes) -> Any:
    if not body.strip():
        raise RequestError(400, "body", "empty; expected a JSON object")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise RequestError(400, "body", "not valid UTF-8") from None
    except RecursionError:
        raise RequestError(400, "body", "JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and the NaN/Infinity rejection
        raise RequestError(400, "body", f"not valid JSON ({exc})") from None


def _as_request_error(exc: EventError, prefix: str = "") -> RequestError:
    if exc.field == "<event>":
        return RequestError(422, prefix.rstrip(".") or "body", exc.reason)
    return RequestError(422, f"{prefix}{exc.field}", exc.reason)


def parse_transaction(body: bytes) -> Transaction:
    """One Transaction from a /predict body."""
    check_size(len(body), MAX_SINGLE_BODY_BYTES)
    try:
        # Fast path: pydantic's own JSON parser; the slower path below only runs to explain a failure.
        return Transaction.model_validate_json(body)
    except ValidationError:
        pass
    payload = _load_json(body)
    try:
        return validate(Transaction, payload)
    except EventError as exc:
        raise _as_request_error(exc) from None


def parse_predict(body: bytes) -> tuple[Transaction, bool]:
    """A /predict body: one Transaction, optionally with ``"explain": true|false`` beside its fields."""
    check_size(len(body), MAX_SINGLE_BODY_BYTES)
    if b'"explain"' not in body:  # Transaction ignores unknown fields, so the fast path would drop the flag
        return parse_transaction(body), False
    payload = _load_json(body)
    explain = False
    if isinstance(payload, dict) and EXPLAIN_FIELD in payload:
        flag = payload.pop(EXPLAIN_FIELD)
        if not isinstance(flag, bool):
            raise RequestError(422, EXPLAIN_FIELD, f"must be true or false, got {type(flag).__name__}")
        explain = flag
    try:
        return validate(Transaction, payload), explain
    except EventError as exc:
        raise _as_request_error(exc) from None


def parse_batch(body: bytes) -> list[Transaction]:
    """The Transactions of a /predict_batch body ``{"transactions": [...]}``."""
    check_size(len(body), MAX_BATCH_BODY_BYTES)
    payload = _load_json(body)
    if not isinstance(payload, dict):
        raise RequestError(422, "body", f"expected a JSON object, got {type(payload).__name__}")
    items = payload.get("transactions")
    if not isinstance(items, list):
        raise RequestError(422, "transactions", "required: a list of transactions")
    if not items:
        raise RequestError(422, "transactions", "must hold at least one transaction")
    if len(items) > MAX_BATCH_TRANSACTIONS:
        raise RequestError(422, "transactions", f"{len(items)} transactions exceeds the limit of {MAX_BATCH_TRANSACTIONS}")
    parsed = []
    for i, item in enumerate(items):
        try:
            parsed.append(validate(Transaction, item))
        except EventError as exc:
            raise _as_request_error(exc, prefix=f"transactions[{i}].") from None
    return parsed
