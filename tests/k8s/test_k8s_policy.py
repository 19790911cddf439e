"""Operational policy over the rendered chart: probes, resources, restricted security, PDBs,
NetworkPolicies, and Services that reach real pods on declared ports."""

from __future__ import annotations

from typing import Any

import pytest
from k8s_chart import (
    VALUE_SETS,
    WORKLOAD_KINDS,
    by_kind,
    containers,
    labels_match,
    pod_template,
    rendered_objects,
)

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def _workloads(value_set: str) -> list[dict[str, Any]]:
    return [o for o in rendered_objects(value_set) if o["kind"] in WORKLOAD_KINDS]


def _pod_owners(value_set: str) -> list[dict[str, Any]]:
    return [o for o in rendered_objects(value_set) if o["kind"] in (*WORKLOAD_KINDS, "Job", "CronJob")]


def _assert_restricted(obj: dict[str, Any]) -> None:
    name = obj["metadata"]["name"]
    pod = pod_template(obj)["spec"]
    pod_sc = pod["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] > 0, name
    assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", name
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"), name
    for container in containers(obj):
        sc = container["securityContext"]
        where = f"{name}/{container['name']}"
        assert sc["runAsNonRoot"] is True, where
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
        assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
        assert not sc.get("privileged"), where


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_pod_is_restricted_and_every_container_has_requests_and_limits(value_set: str) -> None:
    for obj in _pod_owners(value_set):
        _assert_restricted(obj)
        for container in containers(obj):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), container["name"]
            assert {"cpu", "memory"} <= set(resources["limits"]), container["name"]
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts or container["name"] == "redis", f"{container['name']} has no writable /tmp"


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_long_running_container_has_startup_readiness_and_liveness_probes(value_set: str) -> None:
    # Job containers run to completion; probes apply to Deployments and StatefulSets.
    for obj in _workloads(value_set):
        for container in containers(obj, with_init=False):
            for probe in PROBES:
                assert probe in container, f"{obj['metadata']['name']}/{container['name']} lacks {probe}"
            assert obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 10
            assert "preStop" in container.get("lifecycle", {}) or container["name"] in ("redis", "minio")


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_workload_has_a_pdb_and_a_network_policy_of_its_own(value_set: str) -> None:
    objects = rendered_objects(value_set)
    pdbs = by_kind(objects, "PodDisruptionBudget")
    policies = by_kind(objects, "NetworkPolicy")
    for obj in _workloads(value_set):
        labels = pod_template(obj)["metadata"]["labels"]
        assert any(labels_match(p["spec"]["selector"]["matchLabels"], labels) for p in pdbs), obj["metadata"]["name"]
        own = [
            p
            for p in policies
            if p["spec"]["podSelector"].get("matchLabels")
            and labels_match(p["spec"]["podSelector"]["matchLabels"], labels)
        ]
        assert own, f"no NetworkPolicy selects {obj['metadata']['name']}"
    for job in by_kind(objects, "Job") + by_kind(objects, "CronJob"):
        labels = pod_template(job)["metadata"]["labels"]
        assert any(
            p["spec"]["podSelector"].get("matchLabels")
            and labels_match(p["spec"]["podSelector"]["matchLabels"], labels)
            for p in policies
        ), f"no NetworkPolicy selects {job['metadata']['name']}"


def test_network_policies_deny_by_default() -> None:
    deny = [p for p in by_kind(rendered_objects("default"), "NetworkPolicy") if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1
    assert set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny[0]["spec"] and "egress" not in deny[0]["spec"]


def test_only_the_scoring_api_is_open_to_any_client() -> None:
    for policy in by_kind(rendered_objects("default"), "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            if "from" not in rule:
                assert policy["metadata"]["name"] == "rtml-inference"


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_services_select_existing_pods_on_declared_ports(value_set: str) -> None:
    objects = rendered_objects(value_set)
    workloads = _workloads(value_set)
    for service in by_kind(objects, "Service"):
        selector = service["spec"]["selector"]
        targets = [w for w in workloads if labels_match(selector, pod_template(w)["metadata"]["labels"])]
        assert targets, f"Service {service['metadata']['name']} selects no pods"
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            declared = [
                p
                for w in targets
                for c in containers(w, with_init=False)
                for p in c.get("ports", [])
                if target in (p.get("name"), p["containerPort"])
            ]
            assert declared, f"Service {service['metadata']['name']} port {target} is not declared by its pods"


def test_inference_autoscales_its_own_deployment() -> None:
    objects = rendered_objects("default")
    hpa = by_kind(objects, "HorizontalPodAutoscaler")[0]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "rtml-inference")
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "rtml-inference")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
