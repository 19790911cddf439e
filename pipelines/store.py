"""The store parameters every RTML pipeline passes through to its components.

KFP reads a pipeline's and a component's inputs from its signature, so each function still
spells these names out; what lives here once is the pass-through from a pipeline's parameters
to a component call, and the mapping from the component's values back to ``Settings``
(``pipelines.steps.StoreParams``).
"""

from collections.abc import Mapping
from typing import Any

STORE_PARAMETERS = (
    "kafka_bootstrap",
    "registry_uri",
    "s3_endpoint",
    "data_dir",
    "feast_repo",
    "feast_store_yaml",
    "feast_data_uri",
)


def store_inputs(scope: Mapping[str, Any], names: tuple[str, ...] = STORE_PARAMETERS) -> dict[str, Any]:
    """The store parameters found in ``scope`` (a pipeline function's ``locals()``), as component inputs."""
    return {name: scope[name] for name in names if name in scope}
