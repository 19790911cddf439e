"""The scoring contract over HTTP against a running service: answers, auth, bad input, probes."""

from __future__ import annotations

import json

import httpx
import pytest

from services.features.request import missing_stored

from .conftest import TOKEN, RunningService, make_transaction

CONTRACT_FIELDS = {"transaction_id", "fraud_probability", "decision", "model_version", "features_missing"}


def test_valid_request_answers_every_contract_field(service: RunningService) -> None:
    with service.client() as client:
        resp = client.post("/predict", json=make_transaction(1))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == CONTRACT_FIELDS
    assert body["transaction_id"] == "t-1"
    assert 0.0 <= body["fraud_probability"] <= 1.0
    assert body["decision"] in {"approve", "review", "decline"}
    assert body["model_version"] == service.champion.version
    assert body["features_missing"] == []  # the known user and merchant have every stored feature


def test_batch_answers_in_request_order(service: RunningService) -> None:
    transactions = [make_transaction(i, amount=10.0 + i) for i in range(5)]
    with service.client() as client:
        resp = client.post("/predict_batch", json={"transactions": transactions})
    assert resp.status_code == 200, resp.text
    predictions = resp.json()["predictions"]
    assert [p["transaction_id"] for p in predictions] == [t["transaction_id"] for t in transactions]
    assert all(set(p) == CONTRACT_FIELDS for p in predictions)


def test_unknown_user_scores_with_defaults_listed(service: RunningService) -> None:
    with service.client() as client:
        resp = client.post("/predict", json=make_transaction(2, user="u-never-seen", merchant="m-never-seen"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["features_missing"] == missing_stored({})
    assert "user_txn_count_24h" in body["features_missing"]
    assert "merchant_fraud_rate_30d" in body["features_missing"]


@pytest.mark.parametrize(
    ("headers", "path"),
    [({}, "/predict"), ({"Authorization": "Bearer wrong"}, "/predict"), ({"Authorization": TOKEN}, "/predict"),
     ({}, "/predict_batch")],
    ids=["missing", "wrong-token", "no-scheme", "batch-missing"],
)
def test_scoring_needs_the_bearer_token(service: RunningService, headers: dict[str, str], path: str) -> None:
    payload = make_transaction(3) if path == "/predict" else {"transactions": [make_transaction(3)]}
    resp = httpx.post(service.url + path, json=payload, headers=headers, timeout=10)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert TOKEN not in service.log_text()


def test_probes_and_metrics_are_open(service: RunningService) -> None:
    assert httpx.get(service.url + "/livez", timeout=5).status_code == 200
    assert httpx.get(service.url + "/readyz", timeout=5).status_code == 200
    metrics = httpx.get(service.url + "/metrics", timeout=5)
    assert metrics.status_code == 200
    assert f'rtml_inference_model_info{{model_version="{service.champion.version}"}} 1.0' in metrics.text
    for name in ("rtml_inference_request_seconds_bucket", "rtml_inference_batch_size_bucket",
                 "rtml_inference_decisions_total", "rtml_inference_feature_misses_total"):
        assert name in metrics.text


def _with(**changes: object) -> bytes:
    txn = make_transaction(9)
    txn.update(changes)
    return json.dumps(txn).encode()


def _without(field: str) -> bytes:
    txn = make_transaction(9)
    del txn[field]
    return json.dumps(txn).encode()


# (id, path, body, content type, field the error must name)
MALFORMED = [
    ("not-json", "/predict", b"{not json", "application/json", "body"),
    ("empty", "/predict", b"", "application/json", "body"),
    ("array", "/predict", b"[1, 2]", "application/json", "body"),
    ("string", "/predict", b'"hello"', "application/json", "body"),
    ("null", "/predict", b"null", "application/json", "body"),
    ("wrong-content-type", "/predict", _with(), "text/plain", "Content-Type"),
    ("invalid-utf8", "/predict", b'{"transaction_id": "\xff\xfe"}', "application/json", "body"),
    ("missing-transaction-id", "/predict", _without("transaction_id"), "application/json", "transaction_id"),
    ("missing-timestamp", "/predict", _without("timestamp"), "application/json", "timestamp"),
    ("amount-as-string", "/predict", _with(amount="12.5"), "application/json", "amount"),
    ("amount-negative", "/predict", _with(amount=-3), "application/json", "amount"),
    ("amount-nan", "/predict", _with(amount=0).replace(b'"amount": 0', b'"amount": NaN'), "application/json", "body"),
    ("amount-bool", "/predict", _with(amount=True), "application/json", "amount"),
    ("bad-channel", "/predict", _with(channel="fax"), "application/json", "channel"),
    ("bad-currency", "/predict", _with(currency="euro"), "application/json", "currency"),
    ("naive-timestamp", "/predict", _with(timestamp="2026-11-22T03:00:00"), "application/json", "timestamp"),
    ("garbage-timestamp", "/predict", _with(timestamp="yesterday"), "application/json", "timestamp"),
    ("nested-user-id", "/predict", _with(user_id={"id": ["u-1", {"x": 1}]}), "application/json", "user_id"),
    ("user-id-junk-chars", "/predict", _with(user_id="u 1;DROP"), "application/json", "user_id"),
    ("future-schema", "/predict", _with(schema_version=2), "application/json", "schema_version"),
    ("deep-nesting", "/predict", b"[" * 100_000 + b"]" * 100_000, "application/json", "body"),
    ("huge-body", "/predict", b'{"pad": "' + b"x" * 200_000 + b'"}', "application/json", "body"),
    ("batch-not-object", "/predict_batch", b"[]", "application/json", "body"),
    ("batch-missing-list", "/predict_batch", b'{"transactions": {"a": 1}}', "application/json", "transactions"),
    ("batch-empty", "/predict_batch", b'{"transactions": []}', "application/json", "transactions"),
    ("batch-bad-item", "/predict_batch",
     json.dumps({"transactions": [make_transaction(1), {**make_transaction(2), "amount": "x"}]}).encode(),
     "application/json", "transactions[1].amount"),
    ("batch-item-not-object", "/predict_batch", b'{"transactions": [42]}', "application/json", "transactions[0]"),
]


@pytest.mark.parametrize(("path", "body", "content_type", "field"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_input_is_a_4xx_naming_the_field(
    service: RunningService, path: str, body: bytes, content_type: str, field: str
) -> None:
    resp = httpx.post(
        service.url + path, content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": content_type}, timeout=10,
    )
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    error = resp.json()
    assert error["field"] == field, error
    assert field in error["error"]


def test_malformed_input_never_produced_a_5xx(service: RunningService) -> None:
    metrics = httpx.get(service.url + "/metrics", timeout=5).text
    statuses = [line for line in metrics.splitlines() if line.startswith("rtml_inference_requests_total")]
    assert statuses, metrics
    assert not [line for line in statuses if 'status="5' in line]
