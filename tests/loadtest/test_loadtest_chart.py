"""The in-cluster load test (loadtest.enabled): a restricted Helm test Job whose arguments `rtml loadtest`
accepts, reaching only DNS and the inference pods; lint, schema and Kubernetes validation all pass."""

from __future__ import annotations

import sys
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from services.cli.main import build_parser
from services.common.settings import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests" / "k8s"))
from k8s_chart import (
    CHART,
    KUBE_VERSIONS,
    LINT_KUBE_VERSION,
    NAMESPACE,
    containers,
    find,
    pod_template,
    render,
)

ENABLED = {"loadtest": {"enabled": True}}


def _objects(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render(values).get("rtml/templates/loadtest.yaml", "")) if d]


def test_disabled_by_default() -> None:
    assert _objects({}) == []


def test_enabled_renders_a_restricted_helm_test_job_that_lints_and_validates() -> None:
    objects = _objects(ENABLED)
    job = find(tuple(objects), "Job", "rtml-loadtest")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "test"
    pod = pod_template(job)["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    for container in containers(job):
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]) <= set(container["resources"]["limits"])
        assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}
    for obj in objects:
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
    report = helm.lint(CHART, ENABLED, strict=True, namespace=NAMESPACE, kube_version=LINT_KUBE_VERSION)
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == [], report


def test_job_runs_rtml_loadtest_with_arguments_the_cli_accepts() -> None:
    values = {"loadtest": {"enabled": True, "scenario": "spike", "users": 50, "runTime": "2m", "slo": {"p99Ms": 50, "errorRate": 0.001}}}
    container = next(containers(find(tuple(_objects(values)), "Job", "rtml-loadtest")))
    assert container["command"] == ["python", "-m", "services.loadtest"]
    args = build_parser().parse_args(["loadtest", *container["args"]])
    assert args.host == "http://rtml-inference.rtml.svc.cluster.local:3000"
    assert (args.scenario, args.users, args.run_time, args.slo_p99_ms, args.slo_error_rate) == ("spike", 50, 120, 50.0, 0.001)
    token = next(e for e in container["env"] if e["name"] == "RTML_API_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "rtml-settings", "key": "RTML_API_TOKEN"}


def test_network_policy_allows_only_dns_and_the_inference_pods() -> None:
    policy = find(tuple(_objects(ENABLED)), "NetworkPolicy", "rtml-loadtest")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and not policy["spec"].get("ingress")
    targets = [peer for rule in policy["spec"]["egress"] for peer in rule["to"]]
    pods = [t["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for t in targets if "podSelector" in t]
    assert pods == ["inference"]


@pytest.mark.parametrize(
    ("bad", "named"),
    [({"scenario": "tsunami"}, "/loadtest/scenario"), ({"users": 0}, "/loadtest/users"),
     ({"slo": {"p99Ms": 100, "errorRate": 2}}, "/loadtest/slo/errorRate"), ({"runTime": "soon"}, "/loadtest/runTime")],
)
def test_bad_loadtest_values_are_rejected_naming_the_key(bad: dict[str, Any], named: str) -> None:
    with pytest.raises(helm.HelmError) as caught:
        render({"loadtest": {"enabled": True, **bad}})
    assert named in str(caught.value)
