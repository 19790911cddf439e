"""Which services make up RTML, how each starts, and where its health endpoint is."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from services.common.settings import Settings


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str  # started as `python -m <module>`, exactly what its container runs
    port_field: str  # the Settings field holding its HTTP port
    # Optional "module:function" taking Settings, run once by `rtml up` before services start
    # (for example applying the Feast repo).
    prepare: str | None = None

    def port(self, settings: Settings) -> int:
        return int(getattr(settings, self.port_field))

    def exists(self) -> bool:
        try:
            return importlib.util.find_spec(f"{self.module}.__main__") is not None
        except ModuleNotFoundError:
            return False


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("feature", "services.feature", "feature_port", prepare="services.feature.store:apply_repo"),
    ServiceSpec("training", "services.training", "training_port"),
    ServiceSpec("inference", "services.inference", "inference_port"),
    ServiceSpec("monitor", "services.monitor", "monitor_port"),
)


def available_services() -> list[ServiceSpec]:
    """The services whose package exists in this build."""
    return [spec for spec in SERVICES if spec.exists()]
