"""Code tests of the load-test parts: the traffic is valid and realistic, every malformed request is
one the API refuses with a 4xx, the scenario shapes and the SLO verdict."""

from __future__ import annotations

import json
import random

import pytest

from services.common.events import Transaction
from services.inference.request_body import RequestError, parse_batch, parse_transaction
from services.loadtest.report import RunNumbers
from services.loadtest.scenarios import scenario_stage
from services.loadtest.traffic import PREDICT, UNKNOWN_USER_PREFIX, TrafficConfig, TransactionPool, malformed_requests
from services.loadtest.verdict import Slo, judge


@pytest.fixture(scope="module")
def pool() -> TransactionPool:
    return TransactionPool(TrafficConfig(pool_size=2000, unknown_share=0.2, batch_size=8))


def test_pool_transactions_are_valid_simulated_and_fresh(pool: TransactionPool) -> None:
    rng = random.Random(1)
    drawn = [Transaction.model_validate_json(pool.single_body(rng)) for _ in range(300)]
    assert len({t.transaction_id for t in drawn}) == 300
    unknown = sum(t.user_id.startswith(UNKNOWN_USER_PREFIX) for t in drawn) / len(drawn)
    assert 0.1 < unknown < 0.3
    assert {t.channel for t in drawn} == {"web", "pos", "app"}
    assert len({t.merchant_id for t in drawn}) > 50 and len({t.country for t in drawn}) > 3
    assert 5 < sorted(t.amount for t in drawn)[150] < 200  # median card payment, not a constant
    assert len(parse_batch(pool.batch_body(rng))) == 8


def test_every_malformed_request_is_refused_with_a_4xx(pool: TransactionPool) -> None:
    for bad in malformed_requests(pool, random.Random(2)):
        with pytest.raises(RequestError) as caught:
            parse_transaction(bad.body) if bad.path == PREDICT else parse_batch(bad.body)
        assert 400 <= caught.value.status < 500, bad.problem
        json.dumps(caught.value.as_json())


def test_scenario_shapes() -> None:
    steady = [scenario_stage("steady", t, users=20, spawn_rate=5, run_time=60) for t in (0, 30, 59.9)]
    assert steady == [(20, 5)] * 3
    assert scenario_stage("steady", 60, users=20, spawn_rate=5, run_time=60) is None
    before, during, after = (scenario_stage("spike", t, users=20, spawn_rate=5, run_time=100) for t in (10, 50, 90))
    assert before == (5, 5) and during == (20, 20) and after is not None and after[0] == 5


def _numbers(p99: float, failures: int, malformed_failures: int = 0) -> RunNumbers:
    return RunNumbers(scoring_requests=1000, scoring_failures=failures, p99_ms=p99, median_ms=5, requests_per_s=50,
                      malformed_requests=40, malformed_failures=malformed_failures)


@pytest.mark.parametrize(
    ("numbers", "held"),
    [(_numbers(40, 5), True), (_numbers(50, 10), True), (_numbers(51, 0), False), (_numbers(10, 11), False),
     (_numbers(10, 0, malformed_failures=1), False)],
    ids=["within", "at-the-limits", "slow", "errors", "bad-input-not-refused"],
)
def test_verdict_holds_only_within_every_limit(numbers: RunNumbers, held: bool) -> None:
    verdict = judge(numbers, Slo(p99_ms=50, error_rate=0.01))
    assert verdict.held is held
    assert numbers.expected_rejections == 40 - numbers.malformed_failures


def test_no_scoring_requests_never_holds() -> None:
    empty = RunNumbers(0, 0, 0.0, 0.0, 0.0, 0, 0)
    assert judge(empty, Slo(p99_ms=1e9, error_rate=1.0)).held is False
