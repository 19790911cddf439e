"""skaffold.yaml is valid for its apiVersion, builds one image per service, and the chart runs exactly those images."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import yaml
from k8s_chart import REPO_ROOT, RTML_SERVICES, SCHEMAS, WORKLOAD_KINDS, containers, render, values_for

# Skaffold's published schemas; the project keeps them in ../shared/schemas/skaffold, and a copy of the
# one skaffold.yaml uses ships here so a lone clone can still check it.
SHARED_SKAFFOLD_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas" / "skaffold"


def _schema(version: str) -> dict[str, Any]:
    shared = SHARED_SKAFFOLD_SCHEMAS / f"{version}.json"
    path = shared if shared.is_file() else SCHEMAS / f"skaffold-{version}.json"
    return json.loads(path.read_text())


def _config() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())


def test_skaffold_yaml_validates_against_the_schema_for_its_api_version() -> None:
    config = _config()
    version = config["apiVersion"].removeprefix("skaffold/")
    assert version in ("v4beta13", "v4beta14")
    schema = _schema(version)
    jsonschema.validators.validator_for(schema)(schema).validate(config)


def test_one_artifact_per_service_named_after_its_folder_with_an_existing_dockerfile() -> None:
    artifacts = _config()["build"]["artifacts"]
    assert sorted(a["image"] for a in artifacts) == sorted(f"rtml-{s}" for s in RTML_SERVICES)
    for artifact in artifacts:
        folder = artifact["image"].removeprefix("rtml-")
        dockerfile = artifact["docker"]["dockerfile"]
        assert (dockerfile, artifact["docker"]["target"]) == ("Dockerfile", folder)
        assert (REPO_ROOT / artifact.get("context", ".") / dockerfile).is_file()


def _skaffold_like_values() -> dict[str, Any]:
    """What skaffold passes to helm: setValueTemplates with the image templates filled in for a build."""
    release = _config()["deploy"]["helm"]["releases"][0]
    values: dict[str, Any] = {}
    for key, template in release["setValueTemplates"].items():
        filled = re.sub(
            r"\{\{\.IMAGE_(REPO|TAG|DIGEST)_(\w+)\}\}",
            lambda m: {
                "REPO": "localhost/" + m.group(2).replace("_", "-"),
                "TAG": "dev1",
                "DIGEST": "sha256:" + "0" * 64,
            }[m.group(1)],
            template,
        )
        node = values
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = filled
    return values


def test_every_built_image_is_used_by_the_chart_and_the_chart_uses_no_other_rtml_image() -> None:
    release = _config()["deploy"]["helm"]["releases"][0]
    assert release["chartPath"] == "helm/rtml"
    for profile in _config()["profiles"]:
        for patch in profile.get("patches", []):
            if patch["path"].endswith("/valuesFiles/-"):
                assert (REPO_ROOT / patch["value"]).is_file()
    rendered = render(_skaffold_like_values())
    images: set[str] = set()
    for template, text in rendered.items():
        if not template.endswith(".yaml"):
            continue
        for obj in yaml.safe_load_all(text):
            if obj and obj["kind"] in (*WORKLOAD_KINDS, "Job"):
                images |= {c["image"] for c in containers(obj)}
    built = {a["image"] for a in _config()["build"]["artifacts"]}
    used = {i.split(":")[0].removeprefix("localhost/") for i in images if i.startswith("localhost/")}
    assert used == built
    for image in images:
        if image.startswith("localhost/"):
            assert image.endswith(":dev1@sha256:" + "0" * 64)
    # no RTML image escapes the skaffold tag (e.g. a hard-coded default)
    assert not [i for i in images if i.startswith("rtml-")]


def test_profiles_for_kind_and_minikube_and_port_forward_for_the_api() -> None:
    config = _config()
    assert {"kind", "minikube"} <= {p["name"] for p in config["profiles"]}
    assert {"kind", "minikube"} <= {p["name"] for p in config["profiles"] if p.get("activation")}
    forward = config["portForward"][0]
    assert forward["resourceName"] == "rtml-inference"
    assert forward["port"] == values_for("default").get("inference", {}).get("port", 3000)
    # every profile is explained by a comment right above it
    text = (REPO_ROOT / "skaffold.yaml").read_text().splitlines()
    for i, line in enumerate(text):
        if line.strip().startswith("- name:") and i > 0 and "profiles" in "\n".join(text[:i]):
            assert text[i - 1].strip().startswith("#"), f"profile on line {i + 1} has no comment"
