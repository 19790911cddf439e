"""Auth: every endpoint that scores or changes state refuses a missing or wrong bearer token,
probes and metrics stay open, and the token never appears in any service's logs."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from inference.conftest import TOKEN, make_transaction

from services.common.broker import EmbeddedBroker
from services.common.kafka import ensure_topics
from services.common.settings import load_settings
from services.inference.openapi import openapi_document
from tests.resilience.conftest import InferenceServer, ServiceProcess, publish_figures

WRONG = [
    None,  # no Authorization header
    "Bearer",
    "Bearer wrong-token",
    f"Bearer {TOKEN}x",
    f"Bearer {TOKEN[:-1]}",
    f"Basic {TOKEN}",
    TOKEN,  # the token without its scheme
    f"Token {TOKEN}",
]
FIGURES = {"refused": 0, "wrongly_allowed": 0, "accepted_with_token": 0}


def _headers(authorization: str | None) -> dict[str, str]:
    return {"Authorization": authorization} if authorization is not None else {}


@pytest.fixture(scope="module")
def admin_services(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServiceProcess]]:
    """The monitor and the feature service with the token set, logging at DEBUG."""
    workdir = tmp_path_factory.mktemp("auth")
    settings = load_settings(kafka_bootstrap=broker.bootstrap, data_dir=workdir / "data",
                             kafka_max_poll_interval_ms=3000, kafka_session_timeout_ms=6000)
    ensure_topics(settings)
    env = {"RTML_API_TOKEN": TOKEN, "RTML_LOG_LEVEL": "DEBUG", "RTML_LOG_FORMAT": "json"}
    services = [
        ServiceProcess("services.monitor", settings, "RTML_MONITOR_PORT", workdir / "monitor.log", env),
        ServiceProcess("services.feature", settings, "RTML_FEATURE_PORT", workdir / "feature.log", env),
    ]
    try:
        for service in services:
            service.start()
        yield services
    finally:
        for service in services:
            service.stop()


def _scoring_calls() -> list[tuple[str, dict[str, object]]]:
    bodies: dict[str, dict[str, object]] = {
        "/predict": make_transaction(1, prefix="auth"),
        "/predict_batch": {"transactions": [make_transaction(2, prefix="auth")]},
    }
    assert set(openapi_document()["paths"]) == set(bodies), "a new scoring endpoint needs an auth case here"
    return list(bodies.items())


def test_drain_needs_the_token(scoring: InferenceServer) -> None:
    """The preStop hook's POST /admin/drain changes how the instance answers: token only."""
    with httpx.Client(base_url=scoring.url, timeout=30) as client:
        for authorization in WRONG:
            response = client.post("/admin/drain", headers=_headers(authorization))
            assert response.status_code == 401, f"/admin/drain with {authorization!r}: {response.status_code}"
            assert response.json()["field"] == "Authorization"
            FIGURES["refused"] += 1
        # Refused means not draining: answers keep their connection and the instance stays ready.
        answer = client.post("/predict", json=make_transaction(3, prefix="auth"), headers=_headers(f"Bearer {TOKEN}"))
        assert answer.status_code == 200 and answer.headers.get("connection") != "close"
        assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize(("path", "body"), _scoring_calls(), ids=lambda v: v if isinstance(v, str) else "")
def test_scoring_endpoints_need_the_token(scoring: InferenceServer, path: str, body: dict[str, object]) -> None:
    with httpx.Client(base_url=scoring.url, timeout=30) as client:
        for authorization in WRONG:
            response = client.post(path, json=body, headers=_headers(authorization))
            assert response.status_code == 401, f"{path} with {authorization!r}: {response.status_code}"
            assert response.json()["field"] == "Authorization"
            assert response.headers["www-authenticate"] == "Bearer"
            FIGURES["refused"] += 1
        assert client.post(path, json=body, headers=_headers(f"Bearer {TOKEN}")).status_code == 200
        FIGURES["accepted_with_token"] += 1
        # Probes, metrics and the schema stay open (the kubelet and Prometheus carry no token).
        for open_path in ("/livez", "/readyz", "/metrics", "/openapi.json"):
            assert client.get(open_path).status_code == 200, open_path


def test_bentoml_exposes_no_other_unguarded_write_endpoint(scoring: InferenceServer) -> None:
    """BentoML's own OpenAPI page lists what it serves besides the mounted app; nothing there may write."""
    with httpx.Client(base_url=scoring.url, timeout=30) as client:
        docs = client.get("/docs.json").json()
        writes = [(p, m) for p, ops in docs.get("paths", {}).items() for m in ops if m.lower() in ("post", "put", "patch", "delete")]
        for path, method in writes:
            response = client.request(method.upper(), path, json={})
            assert response.status_code in (401, 404, 405), f"{method} {path} answered {response.status_code} without a token"


def test_monitor_snapshot_needs_the_token(admin_services: list[ServiceProcess]) -> None:
    monitor = admin_services[0]
    with httpx.Client(base_url=monitor.url, timeout=60) as client:
        for authorization in WRONG:
            response = client.post("/report/snapshot", headers=_headers(authorization))
            assert response.status_code == 401, f"/report/snapshot with {authorization!r}: {response.status_code}"
            FIGURES["refused"] += 1
        assert client.post("/report/snapshot", headers=_headers(f"Bearer {TOKEN}")).status_code == 200
        FIGURES["accepted_with_token"] += 1
        for open_path in ("/livez", "/readyz", "/metrics", "/api/state"):
            assert client.get(open_path).status_code == 200, open_path


def test_feature_service_has_no_write_endpoint(admin_services: list[ServiceProcess]) -> None:
    feature = admin_services[1]
    with httpx.Client(base_url=feature.url, timeout=30) as client:
        for path in ("/", "/livez", "/readyz", "/metrics"):
            assert client.post(path).status_code in (404, 405), path


def test_token_never_logged(scoring: InferenceServer, admin_services: list[ServiceProcess]) -> None:
    """Runs after the calls above (which sent the right token and near-misses of it)."""
    logs: dict[str, str] = {"inference": scoring.log_text()}
    logs.update({s.module: s.log_text() for s in admin_services})
    for name, text in logs.items():
        assert text.strip(), f"no log captured from {name}"
        assert TOKEN not in text, f"the API token appears in the {name} log"
        assert TOKEN[:-1] not in text, f"a near-miss of the token appears in the {name} log"
    publish_figures("auth", {**FIGURES, "log_bytes_checked": sum(len(t) for t in logs.values()),
                             "logs": sorted(logs)})

