"""Two feature service instances (real processes) share every stage's partitions through the
consumer groups: a simulator stream's user, merchant and merchant-risk features end equal to the
backfill of the same events, exactly, online and offline, and no label is dead-lettered as an
orphan (each finds its transaction through the co-partitioned label join). One instance is
SIGKILLed with a backlog in flight and restarted: the stages' rebalances, replays and
re-forwarded facts change nothing."""

from __future__ import annotations

import time
from pathlib import Path

from services.common.broker import free_port
from services.common.events import Topics
from services.common.kafka import make_producer
from services.common.settings import Settings
from services.demo.probes import is_ready, metric_total
from services.feature.stages import LabelStage, MerchantStage, UserStage
from services.simulator import SimulatorConfig, generate, publish
from tests.feature.conftest import (
    ServiceProcess,
    assert_store_equals_backfill_of,
    wait_caught_up,
)
from tests.feature.malformed import read_topic

STAGES = (UserStage.name, LabelStage.name, MerchantStage.name)


def wait_all_ready(instances: list[ServiceProcess], limit_s: float = 60) -> None:
    """The first instance rebalances (and rebuilds) when the second joins; wait for both."""
    deadline = time.monotonic() + limit_s
    while not all(is_ready(i.url) for i in instances):
        assert all(i.alive() for i in instances), [i.log.read_text()[-2000:] for i in instances]
        assert time.monotonic() < deadline, "instances never both ready"
        time.sleep(0.3)


def test_two_instances_equal_backfill(settings: Settings, tmp_path: Path) -> None:
    events = list(generate(SimulatorConfig(events=4000, users=300, merchants=40, seed=41)))
    instances = [ServiceProcess(settings, tmp_path / "feature-a.log"),
                 ServiceProcess(settings, tmp_path / "feature-b.log", port=free_port())]
    try:
        for instance in instances:
            instance.start()
        wait_all_ready(instances)
        for instance in instances:
            for stage in STAGES:
                owned = metric_total(instance.url, "rtml_feature_assigned_partitions", stage=stage)
                assert owned >= 1, f"{instance.log.name} owns no {stage} partition"

        cut = len(events) * 3 // 5
        producer = make_producer(settings)
        assert publish(events[:cut], producer) == cut
        wait_caught_up(settings, instances, cut)
        # Both instances did real work in every stage.
        for instance in instances:
            for stage in STAGES:
                batches = metric_total(instance.url, "rtml_feature_batch_records_count", stage=stage)
                assert batches > 0, f"{instance.log.name} handled no {stage} batch"

        assert publish(events[cut:], producer) == len(events) - cut
        producer.close()
        instances[1].kill()  # mid-backlog: handled-not-committed batches are redone by the survivor
        try:
            instances[1].start()
        except AssertionError as exc:  # its group partner's side of the rebalance, for the diagnosis
            raise AssertionError(f"{exc}\n--- {instances[0].log.name}: {instances[0].log.read_text()[-4000:]}") from None
        wait_caught_up(settings, instances, len(events))

        assert_store_equals_backfill_of(settings, events, min_labels=1000)

        dead = read_topic(settings, Topics.DLQ)
        reasons = [dict(r.headers)["reason"].decode() for r in dead]  # type: ignore[attr-defined]
        assert not reasons, f"{len(reasons)} dead letters, first: {reasons[:3]}"
        assert [i.stop() for i in instances] == [0, 0]
    finally:
        for instance in instances:
            instance.kill()
