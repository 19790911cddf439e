"""Which services make up RTML, how each starts, and where its health endpoint is."""

from __future__ import annotations

import importlib.util
from collections import Counter
from dataclasses import dataclass, replace

from services.common.settings import FEATURE_STAGES, Settings, stage_names


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str  # started as `python -m <module>`, exactly what its container runs
    port_field: str  # the Settings field holding its HTTP port
    # Optional "module:function" taking Settings, run once by `rtml up` before services start
    # (for example applying the Feast repo).
    prepare: str | None = None
    # One of several processes of a service (the feature service's stages): its own port and
    # RTML_* variables on top of the stack's settings.
    port_override: int | None = None
    env: tuple[tuple[str, str], ...] = ()
    # Spawn the next service only once this one answers /livez: a feature process applies the Feast
    # repo at start, and the local file registry is rewritten in place (docs/features.md, Scaling).
    start_alone: bool = False

    def port(self, settings: Settings) -> int:
        return self.port_override if self.port_override is not None else int(getattr(settings, self.port_field))

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


def feature_layout(text: str, partitions: int) -> list[tuple[str, ...]]:
    """The feature service's processes from "user/user/label,merchant" (``/`` between processes,
    each in RTML_FEATURE_STAGES syntax); raises ValueError naming the problem. Every stage must run
    somewhere, and no stage in more processes than it has partitions (the extra ones would idle)."""
    processes = [stage_names(part) for part in text.split("/") if part.strip()]
    if not processes:
        raise ValueError(f"expected processes separated by '/', each a comma-separated subset of "
                         f"{', '.join(FEATURE_STAGES)}, got {text!r}")
    runs = Counter(stage for process in processes for stage in process)
    missing = [stage for stage in FEATURE_STAGES if stage not in runs]
    if missing:
        raise ValueError(f"every stage must run somewhere; {', '.join(missing)} missing from {text!r}")
    crowded = [f"{count} {stage}" for stage, count in runs.items() if count > partitions]
    if crowded:
        raise ValueError(f"{', '.join(crowded)} processes for {partitions} partitions per topic "
                         "(RTML_TOPIC_PARTITIONS): a stage's processes beyond its partitions idle")
    return processes


def feature_processes(spec: ServiceSpec, layout: list[tuple[str, ...]], ports: list[int]) -> list[ServiceSpec]:
    """One spec per feature process of ``layout`` on ``ports``: named after its stages, started one
    after another, the Feast repo prepared once."""
    seen: Counter[str] = Counter()
    out = []
    for i, (stages, port) in enumerate(zip(layout, ports, strict=True)):
        label = "+".join(stages)
        seen[label] += 1
        name = f"{spec.name}-{label}" + (f"-{seen[label]}" if layout.count(stages) > 1 else "")
        out.append(replace(
            spec, name=name, prepare=spec.prepare if i == 0 else None, port_override=port, start_alone=True,
            env=(("RTML_FEATURE_STAGES", ",".join(stages)), ("RTML_FEATURE_PORT", str(port))),
        ))
    return out
