"""API fuzzing: schemathesis drives the inference service from the OpenAPI document it serves.

Positive and negative cases for every operation in that document: no answer may be a 5xx,
every answer must match the documented status codes and schemas, and every refusal is a
4xx whose JSON names the offending field.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from inference.conftest import TOKEN
from schemathesis import GenerationMode

from services.inference.openapi import openapi_document
from tests.resilience.conftest import InferenceServer, publish_figures, scale

STATUSES: Counter[int] = Counter()


@pytest.fixture(scope="module")
def api_schema(scoring: InferenceServer) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{scoring.url}/openapi.json")
    # The document is served, not copied: what the server publishes is what the code generates.
    assert schema.raw_schema == openapi_document()
    return schema


def check_answer(case: schemathesis.Case) -> None:
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    STATUSES[response.status_code] += 1
    assert response.status_code < 500, f"{case.method} {case.path} -> {response.status_code}: {response.text}"
    case.validate_response(response)
    if response.status_code >= 400:
        body = response.json()
        assert body.get("field"), f"refusal without a field: {body}"
        assert body["field"] in body["error"], body


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize("path", sorted(openapi_document()["paths"]))
def test_scoring_api_fuzz(api_schema: schemathesis.BaseSchema, path: str, mode: GenerationMode) -> None:
    operation = api_schema[path]["POST"]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=scale(40, 500),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def fuzz(case: schemathesis.Case) -> None:
        check_answer(case)

    fuzz()


def test_fuzz_figures() -> None:
    """Runs after the fuzzing above; records what was sent and answered."""
    assert sum(STATUSES.values()) > 0
    assert not [code for code in STATUSES if code >= 500]
    publish_figures("api-fuzz", {"requests": sum(STATUSES.values()), "by_status": dict(sorted(STATUSES.items()))})
