"""RTML services.

Importing any of them first switches off typeguard's ``@typechecked``, which Feast puts on its
core classes: typeguard re-parses and recompiles each decorated class's source on every import,
which made ``import feast`` take ~12 s of CPU per process here (~4.5 s without it) — paid by
every service start, every Kubeflow step and every test worker. typeguard documents these checks
as a development aid that it disables itself under ``python -O``; we disable just them, keeping
``assert`` and everything else -O would change. It must run before Feast is imported, hence here.
"""

from collections.abc import Callable
from typing import Any


def _typeguard_off() -> None:
    try:
        import typeguard
    except ImportError:  # images without Feast (the load generator) have no typeguard either
        return

    def typechecked(target: Any = None, **_config: Any) -> Any:
        """typeguard's decorator as it behaves under ``python -O``: the target, unchanged."""
        if target is None:
            return lambda decorated: decorated
        return target

    no_op: Callable[..., Any] = typechecked
    typeguard.typechecked = no_op


_typeguard_off()
