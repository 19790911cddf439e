"""Batch scoring: `rtml score-batch` over the offline store agrees with the online service,
scores a simulator table with the champion, refuses bad input; its pipeline and CronJob."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from feast.data_source import PushMode

from pipelines.runner import BATCH_COMPILED_PATH, compile_batch_pipeline, run_batch_local
from services.batch import BatchInputError, score_file
from services.common.settings import REPO_ROOT, Settings, child_env
from services.feature.store import open_store
from services.features import names as n
from tests.batch_edge.conftest import Trained, cli
from tests.inference.conftest import KNOWN_MERCHANT, KNOWN_USER, RunningService, make_transaction
from tests.inference.conftest import service as service  # the real inference server fixture, reused
from tests.k8s.k8s_chart import render

OUTPUT_COLUMNS = ["transaction_id", "fraud_probability", "decision", "model_version", "features_missing"]
PIPELINE_ROWS = 300  # a few hundred: the kfp.local run stays well under a minute
BEFORE_TXN = pd.Timestamp("2026-11-22T02:00:00Z")  # the offline rows' time: before the transactions (03:00)

pytestmark = pytest.mark.timeout(1500)  # the shared pipeline run(s) on two shared cores


def write_offline_rows(settings: Settings, stored: dict[str, float]) -> None:
    """The very values the service's online store holds, as offline rows stamped before the transactions."""
    store = open_store(settings)
    user = {k: v for k, v in stored.items() if k.startswith("user_")}
    merchant = {k: stored[k] for k in (n.MERCHANT_TXN_COUNT_24H, n.MERCHANT_AMOUNT_MEAN_24H)}
    risk = {k: stored[k] for k in (n.MERCHANT_FRAUD_RATE_30D, n.MERCHANT_LABELLED_COUNT_30D)}
    stamp = {n.EVENT_TIMESTAMP: BEFORE_TXN, n.CREATED_TIMESTAMP: BEFORE_TXN}
    frames = {
        n.USER_PUSH_SOURCE: {n.USER_JOIN_KEY: KNOWN_USER, **user, n.USER_COUNTRIES_30D: ["DE"],
                             n.USER_DEVICES_30D: ["d-1"], **stamp},
        n.MERCHANT_PUSH_SOURCE: {n.MERCHANT_JOIN_KEY: KNOWN_MERCHANT, **merchant, **stamp},
        n.MERCHANT_RISK_PUSH_SOURCE: {n.MERCHANT_JOIN_KEY: KNOWN_MERCHANT, **risk, **stamp},
    }
    for source, row in frames.items():
        store.push(source, pd.DataFrame([row]), to=PushMode.OFFLINE)


def serve_trained_model(service: RunningService, trained: Trained, kind: str, workdir: Path) -> str:
    """Register the simulator-trained ``kind`` version in the service's registry, promote it and wait
    until the running service answers with it (it polls the registry every 2 s)."""
    source = trained.of_kind(kind)
    artifact = trained.registry.download(source, workdir / "artifact")
    record = service.registry.register(source.model_copy(update={"version": "pending"}), artifact)
    service.registry.promote("fraud", record.version)
    deadline = time.monotonic() + 60
    with service.client() as client:
        while time.monotonic() < deadline:
            if client.post("/predict", json=make_transaction(0, prefix="swap")).json().get("model_version") == record.version:
                return record.version
            time.sleep(0.5)
    raise AssertionError(f"the service never served {record.version}:\n{service.log_text()[-3000:]}")


@pytest.mark.parametrize("kind", ["torch", "sklearn"])
def test_batch_and_online_scores_agree(service: RunningService, trained: Trained, tmp_path: Path, kind: str) -> None:
    version = serve_trained_model(service, trained, kind, tmp_path)
    write_offline_rows(service.settings, service.stored)
    transactions = [
        make_transaction(1, amount=25.0, prefix="agree"),
        make_transaction(2, amount=480.0, prefix="agree"),
        {**make_transaction(3, amount=70.0, prefix="agree"), "country": "BR", "device_id": "d-new", "channel": "app"},
        make_transaction(4, user="u-never-seen", merchant="m-never-seen", amount=900.0, prefix="agree"),
    ]
    with service.client() as client:
        online = {}
        for txn in transactions:
            response = client.post("/predict", json=txn)
            assert response.status_code == 200, response.text
            online[txn["transaction_id"]] = response.json()
    frame = pd.DataFrame(transactions).drop(columns=["schema_version"])
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    result = score_file(service.settings, str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet"))
    batch = pd.read_parquet(tmp_path / "out.parquet")
    assert list(batch.columns) == OUTPUT_COLUMNS and result.rows == len(transactions)
    for row in batch.to_dict("records"):
        answer = online[row["transaction_id"]]
        assert row["fraud_probability"] == pytest.approx(answer["fraud_probability"], abs=1e-6)
        assert row["decision"] == answer["decision"]
        assert row["model_version"] == answer["model_version"] == version
        assert sorted(row["features_missing"]) == sorted(answer["features_missing"])
    assert list(batch["features_missing"].iloc[0]) == [] and len(batch["features_missing"].iloc[3]) > 0
    assert len({round(p, 6) for p in batch["fraud_probability"]}) == len(transactions)  # the cases differ


def test_score_batch_cli_scores_a_simulator_table_with_the_champion(trained: Trained, tmp_path: Path) -> None:
    simulated = trained.simulated()
    part = simulated.tail(1500).drop(columns=["is_fraud", "pattern"])
    part.to_parquet(tmp_path / "in.parquet", index=False)
    assert cli(trained.settings, ["score-batch", "--input", str(tmp_path / "in.parquet"),
                                  "--output", str(tmp_path / "out.parquet")]) == 0
    out = pd.read_parquet(tmp_path / "out.parquet")
    champion = trained.registry.champion("fraud")
    assert champion is not None
    assert list(out["transaction_id"]) == list(part["transaction_id"])
    assert set(out["model_version"]) == {champion.version}
    assert out["fraud_probability"].between(0, 1).all()
    assert set(out["decision"]) <= {"approve", "review", "decline"}
    # The scores rank the simulator's fraud far above the legitimate transactions.
    truth = simulated.set_index("transaction_id").loc[out["transaction_id"], "is_fraud"].to_numpy()
    assert out["fraud_probability"][truth].mean() > 5 * out["fraud_probability"][~truth].mean()
    other = next(v for v in trained.versions() if v.version != champion.version)
    assert cli(trained.settings, ["score-batch", "--input", str(tmp_path / "in.parquet"),
                                  "--output", str(tmp_path / "other.parquet"), "--model", other.version]) == 0
    assert set(pd.read_parquet(tmp_path / "other.parquet")["model_version"]) == {other.version}


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"transaction_id": ["t-1"]}), "missing columns"),
        (pd.DataFrame([{**make_transaction(1), "amount": -3.0}]).drop(columns=["schema_version"]), "amount must be a positive"),
        (pd.DataFrame([make_transaction(1), make_transaction(1)]).drop(columns=["schema_version"]), "appears more than once"),
    ],
)
def test_bad_input_is_refused_with_the_reason(trained: Trained, tmp_path: Path, frame: pd.DataFrame, message: str) -> None:
    frame.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(BatchInputError, match=message):
        score_file(trained.settings, str(tmp_path / "bad.parquet"), str(tmp_path / "out.parquet"))
    assert not (tmp_path / "out.parquet").exists()


def test_unknown_model_version_and_missing_file(trained: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert cli(trained.settings, ["score-batch", "--input", str(tmp_path / "none.parquet"), "--output", "x.parquet"]) == 2
    assert "no such file" in capfd.readouterr().err
    pd.DataFrame([make_transaction(1)]).to_parquet(tmp_path / "in.parquet", index=False)
    assert cli(trained.settings, ["score-batch", "--input", str(tmp_path / "in.parquet"),
                                  "--output", str(tmp_path / "o.parquet"), "--model", "v0999"]) == 2
    assert "--model v0999" in capfd.readouterr().err


def test_batch_pipeline_runs_locally_and_matches_score_batch(trained: Trained, tmp_path: Path) -> None:
    """The compiled-only pipeline, executed: its step must produce, for each input transaction, what
    ``rtml score-batch`` (``score_file``) produces, since the chart and KFP users rely on either."""
    part = trained.simulated().tail(PIPELINE_ROWS).drop(columns=["is_fraud", "pattern"])
    part.to_parquet(tmp_path / "in.parquet", index=False)
    champion = trained.registry.champion("fraud")
    assert champion is not None
    summary = run_batch_local(
        trained.settings,
        {"input_path": str(tmp_path / "in.parquet"), "output_path": str(tmp_path / "pipeline.parquet")},
        tmp_path / "kfp-local",
    )
    out = pd.read_parquet(tmp_path / "pipeline.parquet")
    assert list(out.columns) == OUTPUT_COLUMNS
    assert list(out["transaction_id"]) == list(part["transaction_id"])
    assert out["fraud_probability"].notna().all() and out["fraud_probability"].between(0, 1).all()
    assert set(out["decision"]) <= {"approve", "review", "decline"} and out["decision"].notna().all()
    assert set(out["model_version"]) == {champion.version}
    assert summary["rows"] == PIPELINE_ROWS and summary["model_version"] == champion.version
    assert summary["output"] == str(tmp_path / "pipeline.parquet")
    assert summary["decisions"] == {d: int(c) for d, c in out["decision"].value_counts().sort_index().items()}
    # The step's Dataset artifact is the same table as the copy at output_path.
    (artifact,) = (tmp_path / "kfp-local").glob("rtml-batch-scoring-*/score-transactions/scores")
    pd.testing.assert_frame_equal(pd.read_parquet(artifact), out)

    direct = score_file(trained.settings, str(tmp_path / "in.parquet"), str(tmp_path / "direct.parquet"))
    batch = pd.read_parquet(tmp_path / "direct.parquet")
    assert direct.model_version == champion.version
    assert list(batch["transaction_id"]) == list(out["transaction_id"])
    assert out["fraud_probability"].to_numpy() == pytest.approx(batch["fraud_probability"].to_numpy(), abs=1e-9, rel=0)
    assert list(out["decision"]) == list(batch["decision"])
    assert list(out["model_version"]) == list(batch["model_version"])
    assert [sorted(m) for m in out["features_missing"]] == [sorted(m) for m in batch["features_missing"]]


def test_batch_pipeline_yaml_is_current(tmp_path: Path) -> None:
    fresh = compile_batch_pipeline(tmp_path / "rtml_batch_scoring.yaml", "rtml-training:latest")
    assert yaml.safe_load(fresh.read_text()) == yaml.safe_load(BATCH_COMPILED_PATH.read_text()), (
        "pipelines/compiled/rtml_batch_scoring.yaml is stale: run `rtml pipeline compile`"
    )
    spec = yaml.safe_load(BATCH_COMPILED_PATH.read_text())
    assert spec["pipelineInfo"]["name"] == "rtml-batch-scoring"
    task = spec["root"]["dag"]["tasks"]["score-transactions"]
    assert task["retryPolicy"]["maxRetryCount"] == 2
    assert {"input_path", "output_path", "model_version"} <= set(spec["root"]["inputDefinitions"]["parameters"])


def test_chart_cronjob_is_off_by_default_and_restricted_when_on() -> None:
    assert "CronJob" not in render()["rtml/templates/batch-scoring.yaml"]
    rendered = render({"batchScoring": {"enabled": True, "input": "s3://m/in.parquet", "output": "s3://m/out.parquet",
                                        "modelVersion": "v0003"}})
    objects = [o for o in yaml.safe_load_all(rendered["rtml/templates/batch-scoring.yaml"]) if o]
    cron = next(o for o in objects if o["kind"] == "CronJob")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"].startswith("rtml-training:")
    assert container["args"] == ["--input=s3://m/in.parquet", "--output=s3://m/out.parquet", "--model=v0003"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert any(o["kind"] == "NetworkPolicy" for o in objects)


def test_chart_cronjob_command_scores_a_table_here(trained: Trained, tmp_path: Path) -> None:
    """The CronJob's container command and args, taken from the rendered chart, run here as a process
    against the trained registry and offline store (the cluster's differ only in RTML_* settings):
    it exits 0 and writes what score-batch writes for the same table and model."""
    part = trained.simulated().tail(200).drop(columns=["is_fraud", "pattern"])
    part.to_parquet(tmp_path / "in.parquet", index=False)
    champion = trained.registry.champion("fraud")
    assert champion is not None
    rendered = render({"batchScoring": {"enabled": True, "input": str(tmp_path / "in.parquet"),
                                        "output": str(tmp_path / "cron.parquet"), "modelVersion": champion.version}})
    cron = next(o for o in yaml.safe_load_all(rendered["rtml/templates/batch-scoring.yaml"]) if o and o["kind"] == "CronJob")
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    command = [sys.executable if part_ == "python" else part_ for part_ in container["command"]]
    env = child_env()
    env.update(RTML_DATA_DIR=str(trained.settings.data_dir), RTML_KAFKA_BOOTSTRAP=trained.settings.kafka_bootstrap)
    done = subprocess.run([*command, *container["args"]], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    cron_out = pd.read_parquet(tmp_path / "cron.parquet")
    score_file(trained.settings, str(tmp_path / "in.parquet"), str(tmp_path / "direct.parquet"), champion.version)
    pd.testing.assert_frame_equal(cron_out, pd.read_parquet(tmp_path / "direct.parquet"))
    assert list(cron_out["transaction_id"]) == list(part["transaction_id"])
    assert set(cron_out["model_version"]) == {champion.version}
