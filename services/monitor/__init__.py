"""The monitor: live drift and quality of the serving model, retraining requests, and the report."""

from services.monitor.config import MonitorConfig
from services.monitor.report import SnapshotPaths, write_snapshot
from services.monitor.service import MonitorService
from services.monitor.state import MonitorState

__all__ = ["MonitorConfig", "MonitorService", "MonitorState", "SnapshotPaths", "write_snapshot"]
