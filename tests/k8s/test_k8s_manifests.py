"""Every YAML file in k8s/ is valid: Kubernetes objects against the Kubernetes schemas (strict), the kind
cluster config and the kustomizations (not Kubernetes API objects) against strict schemas in schemas/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from k8s_chart import K8S_DIR, KUBE_VERSIONS, SCHEMAS, yaml_files

# Config files read by tools rather than the API server, keyed by (apiVersion, kind).
TOOL_SCHEMAS = {
    ("kind.x-k8s.io/v1alpha4", "Cluster"): "kind-cluster-v1alpha4.json",
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"): "kustomization-v1beta1.json",
}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


FILES = yaml_files(K8S_DIR)


def test_k8s_dir_has_what_a_fresh_cluster_needs() -> None:
    names = {p.relative_to(K8S_DIR).as_posix() for p in FILES}
    assert {
        "kind-cluster.yaml",
        "namespace.yaml",
        "kubeflow-pipelines/cluster-scoped/kustomization.yaml",
        "kubeflow-pipelines/kustomization.yaml",
        "kubeflow-pipelines/rbac.yaml",
        "metrics-server/kustomization.yaml",
    } <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(K8S_DIR).as_posix())
def test_k8s_file_is_valid(path: Path) -> None:
    documents = _documents(path)
    assert documents, f"{path} is empty"
    for doc in documents:
        schema_file = TOOL_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
        if schema_file:
            jsonschema.Draft202012Validator(json.loads((SCHEMAS / schema_file).read_text())).validate(doc)
            continue
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_kustomization_local_resources_exist() -> None:
    for path in FILES:
        for doc in _documents(path):
            if doc.get("kind") != "Kustomization":
                continue
            for resource in doc["resources"]:
                if "://" not in resource:
                    assert (path.parent / resource).exists(), f"{path}: {resource} does not exist"


def test_both_kubeflow_steps_pin_the_same_release() -> None:
    refs = set()
    for name in ("kubeflow-pipelines/cluster-scoped/kustomization.yaml", "kubeflow-pipelines/kustomization.yaml"):
        remote = [r for r in _documents(K8S_DIR / name)[0]["resources"] if "://" in r]
        refs |= {r.rsplit("?ref=", 1)[1] for r in remote}
    assert len(refs) == 1, refs


def test_kind_maps_the_scoring_api_nodeport_to_the_host() -> None:
    from k8s_chart import find, rendered_objects

    cluster = _documents(K8S_DIR / "kind-cluster.yaml")[0]
    mappings = {m["containerPort"]: m["hostPort"] for n in cluster["nodes"] for m in n.get("extraPortMappings", [])}
    service = find(rendered_objects("kind"), "Service", "rtml-inference")
    node_port = service["spec"]["ports"][0]["nodePort"]
    assert mappings.get(node_port) == 3000


def test_kfp_rbac_binds_the_chart_training_service_account() -> None:
    from k8s_chart import NAMESPACE, find, rendered_objects

    find(rendered_objects("default"), "ServiceAccount", "rtml-training")
    binding = next(d for d in _documents(K8S_DIR / "kubeflow-pipelines/rbac.yaml") if d["kind"] == "RoleBinding")
    assert {"kind": "ServiceAccount", "name": "rtml-training", "namespace": NAMESPACE} in binding["subjects"]
    role = next(d for d in _documents(K8S_DIR / "kubeflow-pipelines/rbac.yaml") if d["kind"] == "Role")
    assert any("runs" in r["resources"] and "create" in r["verbs"] for r in role["rules"])
