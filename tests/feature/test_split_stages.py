"""The feature service split into one process per stage (RTML_FEATURE_STAGES, the chart's
feature.splitStages): each process joins only its own stage's group and owns all of that stage's
partitions, the three together turn a simulator stream into exactly the backfill's features,
online and offline, and an unknown stage name stops a process at start with the variable named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.common.broker import free_port
from services.common.events import Topics
from services.common.kafka import make_producer
from services.common.settings import FEATURE_STAGES, REPO_ROOT, Settings
from services.demo.probes import metric_total
from services.feature.service import GROUPS
from services.simulator import SimulatorConfig, generate, publish
from tests.feature.conftest import (
    ServiceProcess,
    assert_store_equals_backfill_of,
    wait_caught_up,
)
from tests.feature.malformed import read_topic


def test_settings_know_every_stage_by_name() -> None:
    assert tuple(GROUPS) == FEATURE_STAGES


def test_one_process_per_stage_equals_backfill(settings: Settings, tmp_path: Path) -> None:
    events = list(generate(SimulatorConfig(events=3000, users=250, merchants=30, seed=43)))
    # One after another: each start applies the Feast repo, and the local file registry is
    # rewritten in place (docs/features.md, Scaling).
    processes = [ServiceProcess(settings, tmp_path / f"feature-{stage}.log", port=free_port(), stages=stage)
                 for stage in FEATURE_STAGES]
    try:
        for process in processes:
            process.start()
        partitions = settings.topic_partitions
        for process, own in zip(processes, FEATURE_STAGES, strict=True):
            for stage in FEATURE_STAGES:
                owned = metric_total(process.url, "rtml_feature_assigned_partitions", stage=stage)
                # The label stage reads two co-partitioned topics: its partitions count twice.
                expected = (2 if stage == "label" else 1) * partitions if stage == own else 0
                assert owned == expected, f"{process.log.name}: {owned} {stage} partitions, expected {expected}"

        producer = make_producer(settings)
        assert publish(events, producer) == len(events)
        producer.close()
        wait_caught_up(settings, processes, len(events))

        assert_store_equals_backfill_of(settings, events, min_labels=500)
        dead = read_topic(settings, Topics.DLQ)
        assert not dead, f"{len(dead)} dead letters, first: {[dict(r.headers) for r in dead[:3]]}"
        assert [p.stop() for p in processes] == [0, 0, 0]
    finally:
        for process in processes:
            process.kill()


def test_unknown_stage_stops_the_service_naming_the_variable(settings: Settings) -> None:
    env = {**os.environ, "RTML_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "RTML_FEATURE_STAGES": "user,scoring"}
    proc = subprocess.run([sys.executable, "-m", "services.feature"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "RTML_FEATURE_STAGES" in proc.stderr and "scoring" in proc.stderr, proc.stderr
