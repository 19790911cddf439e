"""The chart lints clean, its values schema guards bad input, and every object it renders is valid Kubernetes."""

from __future__ import annotations

import json

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
from k8s_chart import (
    CHART,
    KUBE_VERSIONS,
    LINT_KUBE_VERSION,
    NAMESPACE,
    RTML_SERVICES,
    SCHEMAS,
    VALUE_SETS,
    by_kind,
    render,
    rendered_objects,
    values_for,
)

# Custom resources kubernetes-validate has no schema for, checked against our own strict schema instead.
CRD_SCHEMAS = {("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json"}


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_chart_lints_clean(value_set: str) -> None:
    report = helm.lint(CHART, values_for(value_set), strict=True, namespace=NAMESPACE, kube_version=LINT_KUBE_VERSION)
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 2 = warning, 3 = error
    assert report["errors"] == [] and problems == [], report


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_values_satisfy_the_schema(value_set: str) -> None:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values_for(value_set))


@pytest.mark.parametrize(
    ("bad_values", "named"),
    [
        ({"inference": {"port": "http"}}, "/inference/port"),
        ({"kafka": {"image": {"tag": "latest"}}}, "/kafka/image/tag"),
        ({"settings": {"kafkaBootstrap": "kafka-without-port"}}, "/settings/kafkaBootstrap"),
        ({"feature": {"replicaz": 2}}, "replicaz"),
        ({"feature": {"stageReplicas": {"users": 2}}}, "users"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(bad_values: dict, named: str) -> None:
    with pytest.raises(helm.HelmError) as caught:
        render(bad_values)
    assert named in str(caught.value)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_rendered_object_is_valid_kubernetes(value_set: str) -> None:
    objects = rendered_objects(value_set)
    assert len(objects) > 30
    for obj in objects:
        schema_file = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
        if schema_file:
            schema = json.loads((SCHEMAS / schema_file).read_text())
            jsonschema.Draft202012Validator(schema).validate(obj)
            continue
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_default_render_has_every_part_of_the_architecture() -> None:
    kinds = {(o["kind"], o["metadata"]["name"]) for o in rendered_objects("default")}
    for service in RTML_SERVICES:
        for kind in ("ServiceAccount", "Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget"):
            assert (kind, f"rtml-{service}") in kinds
    for expected in [
        ("StatefulSet", "rtml-kafka"),
        ("Deployment", "rtml-redis"),
        ("StatefulSet", "rtml-minio"),
        ("Job", "rtml-setup"),
        ("ConfigMap", "rtml-settings"),
        ("Secret", "rtml-settings"),
        ("HorizontalPodAutoscaler", "rtml-inference"),
        ("NetworkPolicy", "rtml-default-deny"),
    ]:
        assert expected in kinds
    extras = {(o["kind"], o["metadata"]["name"]) for o in rendered_objects("extras")}
    assert {("ServiceMonitor", "rtml"), ("ConfigMap", "rtml-grafana-dashboard")} <= extras


def test_split_stages_scale_each_stage_on_its_own() -> None:
    """feature.stageReplicas sets a stage's Deployment replicas; the other stages keep feature.replicas."""
    deployments = {o["metadata"]["name"]: o for o in by_kind(rendered_objects("split-stages"), "Deployment")}
    replicas = {stage: deployments[f"rtml-feature-{stage}"]["spec"]["replicas"] for stage in ("user", "label", "merchant")}
    assert replicas == {"user": 2, "label": 1, "merchant": 1}
    assert "rtml-feature" not in deployments


def test_kafka_is_kraft_single_node_with_a_volume_claim() -> None:
    kafka = next(
        o for o in by_kind(rendered_objects("default"), "StatefulSet") if o["metadata"]["name"] == "rtml-kafka"
    )
    image = kafka["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("apache/kafka:") and image.split(":")[1][0].isdigit()
    assert kafka["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    config = next(
        o for o in rendered_objects("default") if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "rtml-kafka"
    )
    assert "process.roles=broker,controller" in config["data"]["server.properties"]


def test_setup_hook_creates_topics_and_applies_the_feast_repo() -> None:
    job = next(o for o in rendered_objects("default") if o["kind"] == "Job")
    assert "post-install" in job["metadata"]["annotations"]["helm.sh/hook"]
    code = " ".join(job["spec"]["template"]["spec"]["containers"][0]["args"])
    assert "ensure_topics(settings)" in code and "apply_repo(settings)" in code
    buckets = job["spec"]["template"]["spec"]["initContainers"][0]["args"]
    assert "rtml/rtml-feast" in buckets and "rtml/rtml-models" in buckets


def test_notes_tell_how_to_reach_the_api_and_run_a_pipeline() -> None:
    notes = render(values_for("kind"))["rtml/templates/NOTES.txt"]
    assert "/predict" in notes and "rtml pipeline submit" in notes and "RTML_API_TOKEN" in notes
