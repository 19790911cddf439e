"""Simulated card payments with learnable, drifting fraud patterns and late labels (``rtml simulate``)."""

from services.simulator.config import SimEvent, SimulatorConfig
from services.simulator.frames import to_frames, write_parquet
from services.simulator.publish import PublishError, publish
from services.simulator.stream import generate
from services.simulator.summary import StreamSummary

__all__ = [
    "PublishError",
    "SimEvent",
    "SimulatorConfig",
    "StreamSummary",
    "generate",
    "publish",
    "to_frames",
    "write_parquet",
]
