"""The compiled Kubeflow pipeline runs its steps in the training image the chart deploys and skaffold builds."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from k8s_chart import CHART, REPO_ROOT, VALUE_SETS, find, render, rendered_objects, values_for

COMPILED_DIR = REPO_ROOT / "pipelines" / "compiled"
COMPILED = COMPILED_DIR / "rtml_training.yaml"
# The chart's copy of pipelines/compiled/ (a chart cannot read files outside its directory).
CHART_COPY_DIR = CHART / "files" / "pipelines"
PIPELINES = {"rtml_training.yaml": "rtml-training", "rtml_batch_scoring.yaml": "rtml-batch-scoring"}
# What skaffold passes for the training image (setValueTemplates in skaffold.yaml), on top of a pushed registry.
SKAFFOLD_IMAGE = {
    "global": {"imageRegistry": "registry.example.com/rtml"},
    "training": {"image": {"repository": "rtml-training", "tag": "v1-3-gabc123@sha256:" + "0" * 64}},
}


def executor_images(spec: dict[str, Any]) -> dict[str, str]:
    return {
        name: executor["container"]["image"]
        for name, executor in spec["deploymentSpec"]["executors"].items()
        if "container" in executor
    }


def without_images(spec: dict[str, Any]) -> dict[str, Any]:
    """The pipeline spec with every executor image blanked, to compare everything else."""
    spec = yaml.safe_load(yaml.safe_dump(spec))
    for executor in spec["deploymentSpec"]["executors"].values():
        if "container" in executor:
            executor["container"]["image"] = "<image>"
    return spec


def test_compiled_pipeline_runs_in_the_training_image() -> None:
    assert COMPILED.is_file(), f"{COMPILED.relative_to(REPO_ROOT)} is missing (rtml pipeline compile writes it)"
    docs = [d for d in yaml.safe_load_all(COMPILED.read_text()) if d]
    executors = {
        name: spec["container"]["image"]
        for doc in docs
        for name, spec in doc.get("deploymentSpec", {}).get("executors", {}).items()
        if "container" in spec
    }
    assert executors, "the compiled pipeline has no container executors"
    deployment = find(rendered_objects("default"), "Deployment", "rtml-training")
    chart_repository = deployment["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[0]
    for name, image in executors.items():
        repository = image.split("@")[0].rsplit(":", 1)[0]
        assert repository.split("/")[-1] == chart_repository.split("/")[-1] == "rtml-training", f"{name} runs {image}"


@pytest.mark.parametrize("file", sorted(PIPELINES))
def test_the_chart_ships_the_current_compiled_pipelines(file: str) -> None:
    copy, compiled = CHART_COPY_DIR / file, COMPILED_DIR / file
    assert copy.is_file() and not copy.is_symlink(), f"{copy.relative_to(REPO_ROOT)} is missing"
    assert copy.read_bytes() == compiled.read_bytes(), (
        f"{copy.relative_to(REPO_ROOT)} is stale: run `rtml pipeline compile` (it writes both)"
    )
    assert sorted(p.name for p in CHART_COPY_DIR.iterdir()) == sorted(PIPELINES)


def _objects(values: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    return tuple(d for name, text in render(values).items() if name.endswith(".yaml") for d in yaml.safe_load_all(text) if d)


RENDERS = {
    **{value_set: lambda value_set=value_set: rendered_objects(value_set) for value_set in sorted(VALUE_SETS)},
    # `skaffold dev` on kind (values-kind.yaml plus the built tag@digest) and `skaffold run --default-repo ...`
    "kind+skaffold": lambda: _objects(values_for("kind", SKAFFOLD_IMAGE)),
    "tag only": lambda: _objects({"training": {"image": {"repository": "rtml-training", "tag": "abc@sha256:0"}}}),
}


@pytest.mark.parametrize("case", sorted(RENDERS))
def test_the_pipelines_configmap_runs_every_step_in_the_deployed_training_image(case: str) -> None:
    from kfp import components

    objects = RENDERS[case]()
    deployed = find(objects, "Deployment", "rtml-training")["spec"]["template"]["spec"]["containers"][0]["image"]
    configmap = find(objects, "ConfigMap", "rtml-pipelines")
    assert set(configmap["data"]) == set(PIPELINES)
    for file, name in PIPELINES.items():
        text = configmap["data"][file]
        # What a user uploads to KFP: it loads back with the KFP SDK as the same pipeline.
        assert components.load_component_from_text(text).name == name
        spec = yaml.safe_load(text)
        images = executor_images(spec)
        assert images and set(images.values()) == {deployed}, f"{file}: {images} but the chart deploys {deployed}"
        compiled = yaml.safe_load((COMPILED_DIR / file).read_text())
        assert set(images) == set(executor_images(compiled))
        assert without_images(spec) == without_images(compiled), f"{file} differs from pipelines/compiled/ beyond the images"
    if case == "kind+skaffold":
        assert deployed == "registry.example.com/rtml/rtml-training:" + SKAFFOLD_IMAGE["training"]["image"]["tag"]
    elif case == "tag only":
        assert deployed == "rtml-training:abc@sha256:0"
    else:
        assert deployed == "rtml-training:0.1.0"  # the chart appVersion


def test_no_pipelines_configmap_without_the_training_service() -> None:
    assert "ConfigMap" not in render({"training": {"enabled": False}})["rtml/templates/pipelines.yaml"]


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_the_training_service_submits_pipelines_in_the_chart_training_image(value_set: str) -> None:
    """In the cluster the training service builds the pipeline in-process from RTML_TRAINING_IMAGE
    (pipelines/runner.py submit()), so the image it submits is exactly the one the chart deploys."""
    training = find(rendered_objects(value_set), "Deployment", "rtml-training")["spec"]["template"]["spec"]
    container = training["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RTML_TRAINING_IMAGE"] == container["image"]


def test_the_training_image_follows_the_registry_and_the_skaffold_tag() -> None:
    values = {"global": {"imageRegistry": "registry.example.com/rtml"}, "training": {"image": {"tag": "abc@sha256:0"}}}
    rendered = render(values)
    objects = [d for name, text in rendered.items() if name.endswith(".yaml") for d in yaml.safe_load_all(text) if d]
    training = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "rtml-training")
    container = training["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RTML_TRAINING_IMAGE"] == container["image"] == "registry.example.com/rtml/rtml-training:abc@sha256:0"
