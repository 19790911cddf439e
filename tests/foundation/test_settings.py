from __future__ import annotations

import subprocess
import sys

import pytest

from services.common.settings import Settings, SettingsError, load_settings


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("RTML_"):
            monkeypatch.delenv(key)
    s = load_settings()
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.kfp_host == ""
    assert s.registry_uri.startswith("file://")
    assert s.api_token.get_secret_value() == ""


def test_env_vars_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTML_KAFKA_BOOTSTRAP", "kafka-0:9092,kafka-1:9092")
    monkeypatch.setenv("RTML_MODEL_REGISTRY_URI", "s3://models/registry")
    monkeypatch.setenv("RTML_S3_ENDPOINT", "http://minio:9000")
    monkeypatch.setenv("RTML_API_TOKEN", "s3cret")
    monkeypatch.setenv("RTML_KFP_HOST", "http://ml-pipeline:8888")
    s = load_settings()
    assert s.bootstrap_servers == ["kafka-0:9092", "kafka-1:9092"]
    assert s.registry_uri == "s3://models/registry"
    assert s.api_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)  # the token never leaks through a repr or a log line


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("RTML_KAFKA_BOOTSTRAP", "no-port"),
        ("RTML_TOPIC_PARTITIONS", "zero"),
        ("RTML_TOPIC_PARTITIONS", "0"),
        ("RTML_MODEL_REGISTRY_URI", "ftp://x"),
        ("RTML_KFP_HOST", "ml-pipeline:8888"),
        ("RTML_INFERENCE_PORT", "70000"),
        ("RTML_LOG_LEVEL", "LOUD"),
        ("RTML_FEATURE_STAGES", "user,scoring"),
        ("RTML_FEATURE_STAGES", "user,user"),
        ("RTML_FEATURE_STAGES", " , "),
    ],
)
def test_invalid_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError, match=var):
        load_settings()


def test_feature_stages_are_read_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().feature_stage_names == ("user", "label", "merchant")
    monkeypatch.setenv("RTML_FEATURE_STAGES", " merchant , label")
    assert load_settings().feature_stage_names == ("merchant", "label")


def test_every_field_is_an_rtml_variable() -> None:
    assert all(name == name.lower() for name in Settings.model_fields)
    for contract in ("kafka_bootstrap", "data_dir", "feast_repo", "model_registry_uri", "s3_endpoint", "api_token", "kfp_host"):
        assert contract in Settings.model_fields


def test_cli_reports_bad_setting_in_one_line_exit_2() -> None:
    env = {"RTML_KAFKA_BOOTSTRAP": "broken", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "up"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "RTML_KAFKA_BOOTSTRAP" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "argv",
    [["nonsense"], ["up", "--bogus"], ["up", "--services", "nope"]],
)
def test_cli_bad_flags_one_line_exit_2(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "services.cli", *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
