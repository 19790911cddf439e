"""Render the RTML chart with Helm's own engine (helm-python-sdk) and walk the objects it produces."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate.utils
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "helm" / "rtml"
K8S_DIR = REPO_ROOT / "k8s"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
RELEASE = "rtml"
NAMESPACE = "rtml"
# Kubernetes versions the rendered objects must be valid for: the current releases kubernetes-validate ships.
KUBE_VERSIONS = ("1.35.0", "1.36.0", "1.37.0")
LINT_KUBE_VERSION = "v1.35.0"

# value sets the chart must render for: name -> values file (None = chart defaults) plus overrides
VALUE_SETS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "default": (None, {}),
    "kind": ("values-kind.yaml", {}),
    "minikube": ("values-minikube.yaml", {}),
    # the feature service as a Deployment per stage (docs/features.md, Scaling), the user stage scaled
    "split-stages": (None, {"feature": {"splitStages": True, "stageReplicas": {"user": 2}}}),
    # the optional extras switched on, so their templates are checked too
    "extras": (
        None,
        {
            "serviceMonitor": {"enabled": True},
            "grafanaDashboard": {"enabled": True},
            # issue 8: the in-cluster load test (a Helm test Job)
            "loadtest": {"enabled": True},
            # issue 10: scheduled batch scoring (a CronJob); input and output are required when enabled
            "batchScoring": {
                "enabled": True,
                "input": "s3://rtml-models/batch/in.parquet",
                "output": "s3://rtml-models/batch/out.parquet",
            },
        },
    ),
}
# kubernetes-validate re-reads and re-parses its multi-megabyte _definitions.json on every validate()
# call (hundreds here); the schema files never change, so parse each one once. Validation is unchanged.
kubernetes_validate.utils.schema_contents = cache(kubernetes_validate.utils.schema_contents)

RTML_SERVICES = ("feature", "training", "inference", "monitor")
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


def values_for(value_set: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The user-supplied values of a value set (what `helm -f file --set ...` would pass), plus any extra --set."""
    values_file, overrides = VALUE_SETS[value_set]
    values: dict[str, Any] = {}
    if values_file:
        values = helm.values_from_yaml((CHART / values_file).read_text())
    return _deep_merge(_deep_merge(values, overrides), extra or {})


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def render(values: dict[str, Any] | None = None) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


@cache
def rendered_objects(value_set: str) -> tuple[dict[str, Any], ...]:
    """Every Kubernetes object the chart renders for a value set (NOTES.txt excluded)."""
    docs: list[dict[str, Any]] = []
    for template, text in sorted(render(values_for(value_set)).items()):
        if not template.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append(doc)
    return tuple(docs)


def by_kind(objects: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def find(objects: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise KeyError(f"{kind}/{name} not rendered")


def pod_template(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def containers(obj: dict[str, Any], with_init: bool = True) -> Iterator[dict[str, Any]]:
    spec = pod_template(obj)["spec"]
    yield from spec.get("containers", [])
    if with_init:
        yield from spec.get("initContainers", [])


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml"))
