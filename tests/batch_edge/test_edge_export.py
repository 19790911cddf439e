"""`rtml models export --format edge`: int8 weights + a numpy-only scorer that runs on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from services.models.artifacts import load_model
from services.models.edge_report import holdout_inputs
from tests.batch_edge.conftest import Trained, cli

MAX_PR_AUC_LOSS = 0.02

pytestmark = pytest.mark.timeout(1500)  # the shared pipeline run(s) on two shared cores


@pytest.fixture(scope="module")
def exported(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("edge") / "edge"
    version = trained.of_kind("torch").version
    assert cli(trained.settings, ["models", "export", "--format", "edge", version, "--out", str(out)]) == 0
    return out, json.loads((out / "manifest.json").read_text())


def test_export_writes_a_smaller_artifact_with_manifest(exported: tuple[Path, dict], trained: Trained) -> None:
    out, manifest = exported
    record = trained.of_kind("torch")
    assert sorted(p.name for p in out.iterdir()) == ["edge_model.npz", "manifest.json", "score_edge.py"]
    assert manifest["features"] == record.features and manifest["version"] == record.version
    assert manifest["thresholds"] == record.thresholds.model_dump()
    assert set(manifest["feature_defaults"]) == set(record.features)
    edge_bytes = (out / "edge_model.npz").stat().st_size + (out / "manifest.json").stat().st_size
    full_dir = trained.registry.download(record, out.parent / "full")
    full_bytes = sum(p.stat().st_size for p in full_dir.iterdir())
    assert edge_bytes < 0.75 * full_bytes, (edge_bytes, full_bytes)
    source = (out / "score_edge.py").read_text()
    assert "services" not in {line.split()[1].split(".")[0] for line in source.splitlines() if line.startswith(("import ", "from "))}


def test_standalone_scorer_matches_the_full_model_on_the_test_set(
    exported: tuple[Path, dict], trained: Trained, tmp_path: Path
) -> None:
    out, manifest = exported
    record = trained.of_kind("torch")
    x, y = holdout_inputs(record, trained.settings.registry_uri)
    full = load_model(trained.registry, record, tmp_path / "cache").predict_proba(x)
    rows = "".join(json.dumps(dict(zip(manifest["features"], map(float, r), strict=True))) + "\n" for r in x)
    # A clean interpreter: isolated mode (no PYTHONPATH, no cwd on sys.path), run from the export dir.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RTML_"))}
    done = subprocess.run(
        [sys.executable, "-I", "score_edge.py", "."], cwd=out, input=rows, capture_output=True, text=True, env=env,
        timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    edge = np.array([a["fraud_probability"] for a in answers])
    assert len(edge) == len(y) and {a["decision"] for a in answers} <= {"approve", "review", "decline"}
    full_pr, edge_pr = average_precision_score(y, full), average_precision_score(y, edge)
    assert abs(full_pr - edge_pr) < MAX_PR_AUC_LOSS, (full_pr, edge_pr)
    assert np.max(np.abs(full - edge)) < 0.05


def test_standalone_scorer_rejects_an_unknown_feature(exported: tuple[Path, dict]) -> None:
    out, _ = exported
    done = subprocess.run(
        [sys.executable, "-I", "score_edge.py", "."], cwd=out, input='{"not_a_feature": 1}\n', capture_output=True,
        text=True, timeout=60, check=False,
    )
    assert done.returncode != 0 and "unknown features ['not_a_feature']" in done.stderr


def test_export_refuses_a_non_torch_version(trained: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    sklearn = trained.of_kind("sklearn").version
    assert cli(trained.settings, ["models", "export", "--format", "edge", sklearn, "--out", str(tmp_path / "x")]) == 2
    assert "takes a torch (MLP) version" in capfd.readouterr().err
