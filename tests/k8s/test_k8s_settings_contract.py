"""The chart sets exactly RTML settings: every RTML_* variable it sets is a Settings field,
every field a cluster deployment depends on is set, and the values parse as Settings."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from k8s_chart import VALUE_SETS, by_kind, containers, find, rendered_objects

from services.common.settings import ENV_PREFIX, Settings, load_settings

# Settings whose defaults only make sense on one machine; the cluster must set every one of them.
CLUSTER_REQUIRED = {
    "kafka_bootstrap",
    "data_dir",
    "feast_repo",
    "feast_store_yaml",
    "feast_data_uri",
    "redis_url",
    "model_registry_uri",
    "s3_endpoint",
    "api_token",
    "kfp_host",
    "bind_host",
    "feature_port",
    "training_port",
    "inference_port",
    "monitor_port",
}


def _settings_sources(objects: tuple[dict[str, Any], ...]) -> dict[str, str]:
    config = find(objects, "ConfigMap", "rtml-settings")["data"]
    secret = find(objects, "Secret", "rtml-settings")
    secret_data = dict(secret.get("stringData", {}))
    secret_data |= {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    assert not set(config) & set(secret_data), "a setting is both in the ConfigMap and the Secret"
    return {**config, **secret_data}


def _rtml_variables_set_anywhere(objects: tuple[dict[str, Any], ...]) -> set[str]:
    names = set(_settings_sources(objects))
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob"):
            for container in containers(obj):
                names |= {e["name"] for e in container.get("env", []) if e["name"].startswith(ENV_PREFIX)}
    return names


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_rtml_variable_the_chart_sets_is_a_settings_field(value_set: str) -> None:
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    unknown = _rtml_variables_set_anywhere(rendered_objects(value_set)) - fields
    assert not unknown, f"the chart sets variables Settings does not know: {sorted(unknown)}"


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_required_setting_is_set_and_the_values_parse(value_set: str, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = rendered_objects(value_set)
    sources = _settings_sources(objects)
    required = CLUSTER_REQUIRED | {name for name, field in Settings.model_fields.items() if field.is_required()}
    missing = {f"{ENV_PREFIX}{name.upper()}" for name in required} - set(sources)
    assert not missing, f"the chart does not set {sorted(missing)}"
    for key in [k for k in list(os.environ) if k.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in sources.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.bind_host == "0.0.0.0"
    assert settings.feast_store_yaml == "feature_store.cluster.yaml"
    assert settings.model_registry_uri.startswith("s3://") and settings.feast_data_uri.startswith("s3://")
    assert settings.api_token.get_secret_value(), "the API token must be set in the cluster"
    assert settings.kfp_host.startswith("http://ml-pipeline.")


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_rtml_container_reads_the_settings_configmap_and_secret(value_set: str) -> None:
    objects = rendered_objects(value_set)
    for obj in by_kind(objects, "Deployment") + by_kind(objects, "Job") + by_kind(objects, "CronJob"):
        for container in containers(obj, with_init=False):
            if not container["image"].split("/")[-1].startswith("rtml-"):
                continue
            if container["name"] == "loadtest":
                # The load generator is a client of the scoring API: it gets the bearer token and nothing else.
                assert "envFrom" not in container
                assert [e["name"] for e in container["env"] if e["name"].startswith(ENV_PREFIX)] == ["RTML_API_TOKEN"]
                assert container["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "rtml-settings"
                continue
            refs = {(k, v["name"]) for src in container["envFrom"] for k, v in src.items()}
            assert refs == {("configMapRef", "rtml-settings"), ("secretRef", "rtml-settings")}


def test_the_api_token_lives_in_the_secret_not_the_configmap() -> None:
    objects = rendered_objects("default")
    assert "RTML_API_TOKEN" not in find(objects, "ConfigMap", "rtml-settings")["data"]
    assert "RTML_API_TOKEN" in find(objects, "Secret", "rtml-settings")["stringData"]
