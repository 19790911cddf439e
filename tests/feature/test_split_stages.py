"""The feature service split into processes by stage (RTML_FEATURE_STAGES, the chart's
feature.splitStages), in the layout docs/features.md recommends for two cores: two user-stage
processes (feature.stageReplicas) and one of each other stage over 4 partitions per topic. Each
process joins only its own stage's group, the user processes share that stage's partitions, the
four together turn a simulator stream into exactly the backfill's features, online and offline,
and an unknown stage name stops a process at start with the variable named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.broker import EmbeddedBroker, free_port
from services.common.events import Topics
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import FEATURE_STAGES, REPO_ROOT, Settings, load_settings
from services.demo.probes import metric_total
from services.feature.service import GROUPS
from services.simulator import SimulatorConfig, generate, publish
from tests.feature.conftest import (
    ServiceProcess,
    assert_store_equals_backfill_of,
    wait_caught_up,
)
from tests.feature.malformed import read_topic

PARTITIONS = 4
LAYOUT = ("user", "user", "label", "merchant")


@pytest.fixture(scope="module")
def settings(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """This module's broker, its topics created with 4 partitions (RTML_TOPIC_PARTITIONS)."""
    s = load_settings(kafka_bootstrap=broker.bootstrap, data_dir=tmp_path_factory.mktemp("feature-data"),
                      feature_port=free_port(), topic_partitions=PARTITIONS)
    ensure_topics(s)
    return s


def test_settings_know_every_stage_by_name() -> None:
    assert tuple(GROUPS) == FEATURE_STAGES


def test_stage_processes_with_the_user_stage_scaled_equal_backfill(settings: Settings, tmp_path: Path) -> None:
    events = list(generate(SimulatorConfig(events=3000, users=250, merchants=30, seed=43)))
    # One after another: each start applies the Feast repo, and the local file registry is
    # rewritten in place (docs/features.md, Scaling).
    processes = [ServiceProcess(settings, tmp_path / f"feature-{i}-{stage}.log", port=free_port(), stages=stage)
                 for i, stage in enumerate(LAYOUT)]
    try:
        for process in processes:
            process.start()
        # Both user processes joined before the counts are read: the second one's join rebalanced
        # the first (which then replays and becomes ready again).
        for process in processes:
            process.wait_ready()
        for process, own in zip(processes, LAYOUT, strict=True):
            for stage in FEATURE_STAGES:
                owned = metric_total(process.url, "rtml_feature_assigned_partitions", stage=stage)
                # The label stage reads two co-partitioned topics: its partitions count twice;
                # the range assignor gives each of the two user processes half of that stage's.
                share = PARTITIONS // LAYOUT.count(stage) if stage == own else 0
                expected = (2 if stage == "label" else 1) * share
                assert owned == expected, f"{process.log.name}: {owned} {stage} partitions, expected {expected}"

        producer = make_producer(settings)
        assert publish(events, producer) == len(events)
        producer.close()
        wait_caught_up(settings, processes, len(events))

        assert_store_equals_backfill_of(settings, events, min_labels=500)
        dead = read_topic(settings, Topics.DLQ)
        assert not dead, f"{len(dead)} dead letters, first: {[dict(r.headers) for r in dead[:3]]}"
        assert [p.stop() for p in processes] == [0] * len(LAYOUT)
    finally:
        for process in processes:
            process.kill()


def test_unknown_stage_stops_the_service_naming_the_variable(settings: Settings) -> None:
    env = {**os.environ, "RTML_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "RTML_FEATURE_STAGES": "user,scoring"}
    proc = subprocess.run([sys.executable, "-m", "services.feature"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "RTML_FEATURE_STAGES" in proc.stderr and "scoring" in proc.stderr, proc.stderr
