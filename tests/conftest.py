"""Fixtures shared by every test area: a real Tansu broker and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.broker import EmbeddedBroker
from services.common.settings import Settings, load_settings
from tests.trained_model import Trained, trained_pipeline


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One real Tansu broker on a free loopback port for the whole session."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as running:
        yield running


@pytest.fixture(scope="session")
def trained(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """Models trained once per session by the real pipeline (tests/trained_model.py)."""
    yield from trained_pipeline(broker, tmp_path_factory)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist --dist loadgroup: keep each module on one worker, so its module
    fixtures (servers, pipeline runs) are built once, and every user of the shared trained
    models on the same worker as the run that trains them."""
    groups = {}
    for item in items:
        uses_trained = "trained" in getattr(item, "fixturenames", ())
        group = "trained-models" if uses_trained else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))
        groups[item.nodeid] = group
    # With --no-loadscope-reorder (Makefile) xdist hands groups out in collection order, two to each
    # worker at the start: the longest (the two demo runs, the shared and the at-scale pipeline runs)
    # go first, one demo per worker, so the suite does not end waiting on a worker that started them last.
    first = ["tests/demo/test_demo_e2e.py", "tests/demo/test_demo_no_drift.py", "trained-models",
             "tests/training/test_pipeline_at_scale.py"]
    items.sort(key=lambda item: first.index(groups[item.nodeid]) if groups[item.nodeid] in first else len(first))


@pytest.fixture()
def settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    """Settings for one test: the session broker, a fresh data dir, fast group joins."""
    return load_settings(
        kafka_bootstrap=broker.bootstrap,
        data_dir=tmp_path / "data",
        kafka_max_poll_interval_ms=3000,
        kafka_session_timeout_ms=6000,
    )
