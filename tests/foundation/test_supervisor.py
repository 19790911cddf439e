"""The supervisor brings a crashed embedded broker back, with its topics."""

from __future__ import annotations

import io
from pathlib import Path

from kafka import KafkaConsumer

from services.common.broker import free_port, port_open
from services.common.events import Topics
from services.common.settings import load_settings
from services.common.supervisor import Stack


def test_crashed_broker_is_restarted_with_topics(tmp_path: Path) -> None:
    port = free_port()
    settings = load_settings(data_dir=tmp_path / "data", broker_port=port, kafka_bootstrap=f"127.0.0.1:{port}")
    out = io.StringIO()
    stack = Stack(settings, services=[], out=out).start()
    try:
        assert stack.broker is not None and stack.broker.process is not None
        stack.broker.process.kill()
        stack.broker.process.wait()
        assert not port_open("127.0.0.1", port)
        stack.supervise_once()
        assert port_open("127.0.0.1", port)
        probe = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
        try:
            assert set(Topics.ALL) <= set(probe.topics())
        finally:
            probe.close()
        assert "restarting it" in out.getvalue()
    finally:
        stack.stop()
    assert not port_open("127.0.0.1", port)
