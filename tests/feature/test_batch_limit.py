"""A feature stage's batch fits its poll interval: a batch handled too slowly is redelivered whole
(the member left the group), so one that could never fit would be redelivered for ever."""

from __future__ import annotations

import pytest

from services.common.settings import load_settings
from services.feature.service import MAX_BATCH, WORST_US_PER_EVENT, batch_limit


@pytest.mark.parametrize(("interval_ms", "expected"), [(5_000, MAX_BATCH), (3_000, 6_000), (1_000, 2_000)])
def test_batch_limit_follows_the_poll_interval(interval_ms: int, expected: int) -> None:
    settings = load_settings(kafka_max_poll_interval_ms=interval_ms)
    assert batch_limit(settings) == expected
    assert batch_limit(settings) * WORST_US_PER_EVENT <= interval_ms * 1000
