"""Boot each service exactly as the chart runs it: the rendered container's command, args and
environment (ConfigMap, Secret and env entries resolved as the kubelet would), with only the hosts
pointed at this machine - the embedded Tansu broker for Kafka, Redis at 127.0.0.1:6379, and moto's
S3 server standing in for MinIO's S3 API. The chart's setup hook runs first, the same way, while a
small real scikit-learn model is registered and promoted in the chart's s3:// registry (what a first
pipeline run does in the cluster), so inference has a champion to load. Then all four services start
at once, as the Deployments do, and each test waits for its own service's readiness probe."""

from __future__ import annotations

import base64
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from k8s_chart import REPO_ROOT, RTML_SERVICES, by_kind, find, rendered_objects
from moto.server import ThreadedMotoServer

from services.common.broker import EmbeddedBroker, free_port
from services.registry import ModelRegistry
from tests.model_fixtures import register_model

# Generous: a cold service imports Feast/BentoML/torch on a shared 2-core machine. Not a speed assertion.
READY_WAIT_S = 240.0
# A Redis database of its own, so the boot test never touches what other tests keep in db 0.
REDIS_DB = 11
# Container paths from the images (WORKDIR /app) and the chart's volumes, mapped to this machine.
IMAGE_ROOT = "/app"


class Stores:
    def __init__(self, broker: EmbeddedBroker, s3_endpoint: str, scratch: Path) -> None:
        self.broker = broker
        self.s3_endpoint = s3_endpoint
        self.scratch = scratch


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    scratch = tmp_path_factory.mktemp("k8s-boot")
    # moto logs every S3 request; the services' own logs are what a failure needs.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    moto.start()
    broker = EmbeddedBroker(log_path=scratch / "broker.log").start()
    try:
        host, port = moto.get_host_and_port()
        yield Stores(broker, f"http://{host}:{port}", scratch)
    finally:
        broker.stop()
        moto.stop()


def _secret_data(objects: tuple[dict[str, Any], ...], name: str) -> dict[str, str]:
    secret = find(objects, "Secret", name)
    data = dict(secret.get("stringData", {}))
    data |= {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    return data


def _container_env(objects: tuple[dict[str, Any], ...], container: dict[str, Any]) -> dict[str, str]:
    """The environment the kubelet would give the container (envFrom first, then env)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= find(objects, "ConfigMap", source["configMapRef"]["name"])["data"]
        if "secretRef" in source:
            env |= _secret_data(objects, source["secretRef"]["name"])
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = _secret_data(objects, ref["name"])[ref["key"]]
    return env


def _local_env(env: dict[str, str], stores: Stores, workdir: Path) -> dict[str, str]:
    """Point the chart's hosts and container paths at this machine; everything else stays as rendered."""
    local = {}
    for key, value in env.items():
        if value.startswith(IMAGE_ROOT + "/") or value == IMAGE_ROOT:
            value = str(REPO_ROOT) + value[len(IMAGE_ROOT) :]
        elif value.startswith("/var/lib/rtml") or value.startswith("/tmp"):
            value = str(workdir) + value
        local[key] = value
    local |= {
        "RTML_KAFKA_BOOTSTRAP": stores.broker.bootstrap,
        "RTML_S3_ENDPOINT": stores.s3_endpoint,
        "AWS_ENDPOINT_URL": stores.s3_endpoint,
        "RTML_REDIS_URL": f"127.0.0.1:6379,db={REDIS_DB}",
        # No Kubeflow Pipelines API here: the training service uses the local runner.
        "RTML_KFP_HOST": "",
        "RTML_KAFKA_MAX_POLL_INTERVAL_MS": "3000",
    }
    for port_var in ("RTML_FEATURE_PORT", "RTML_TRAINING_PORT", "RTML_INFERENCE_PORT", "RTML_MONITOR_PORT"):
        local[port_var] = str(free_port())
    for created in ("HOME", "BENTOML_HOME", "MPLCONFIGDIR", "RTML_DATA_DIR"):
        Path(local[created]).mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO_ROOT), **local}


def _argv(container: dict[str, Any]) -> list[str]:
    argv = [*container.get("command", []), *container.get("args", [])]
    assert argv[0] == "python", "RTML containers run python"
    return [sys.executable, *argv[1:]]


def _create_buckets(objects: tuple[dict[str, Any], ...], stores: Stores) -> None:
    """What the hook's `mc mb` init container does (mc itself is not available here)."""
    job = by_kind(objects, "Job")[0]
    buckets = [
        a.split("/", 1)[1]
        for a in job["spec"]["template"]["spec"]["initContainers"][0]["args"]
        if a.startswith("rtml/")
    ]
    s3 = boto3.client(
        "s3", endpoint_url=stores.s3_endpoint, aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    )
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)


def _seed_champion(objects: tuple[dict[str, Any], ...], stores: Stores) -> str:
    """Register and promote a small real scikit-learn model in the chart's registry (moto S3), with the
    chart's own S3 credentials - what the first pipeline run's gate leaves behind in the cluster."""
    container = find(objects, "Deployment", "rtml-inference")["spec"]["template"]["spec"]["containers"][0]
    env = _container_env(objects, container)
    with pytest.MonkeyPatch.context() as patch:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            patch.setenv(key, env[key])
        registry = ModelRegistry(env["RTML_MODEL_REGISTRY_URI"], stores.s3_endpoint)
        version = register_model(registry, stores.scratch, seed=1).version
        return registry.promote("fraud", version, reason="k8s boot test seed").version


@pytest.fixture(scope="module")
def applied(stores: Stores) -> tuple[dict[str, Any], ...]:
    """Run the chart's setup hook container (topics + Feast apply) against the local stores, and
    meanwhile seed the champion model (the registry needs only the buckets, which come first)."""
    objects = rendered_objects("default")
    _create_buckets(objects, stores)
    job = by_kind(objects, "Job")[0]
    container = job["spec"]["template"]["spec"]["containers"][0]
    workdir = stores.scratch / "setup"
    hook_log = stores.scratch / "setup-hook.log"
    with open(hook_log, "wb") as log:
        hook = subprocess.Popen(
            _argv(container),
            env=_local_env(_container_env(objects, container), stores, workdir),
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        assert _seed_champion(objects, stores) == "v0001"
        code = hook.wait(timeout=READY_WAIT_S)
    finally:
        if hook.poll() is None:
            hook.kill()
            hook.wait()
    assert code == 0, f"setup hook failed:\n{hook_log.read_text(errors='replace')[-4000:]}"
    return objects


@dataclass
class Booting:
    """One service process started from its Deployment's container."""

    process: subprocess.Popen[bytes]
    port: str
    container: dict[str, Any]
    pod: dict[str, Any]
    log_path: Path

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def _start(service: str, objects: tuple[dict[str, Any], ...], stores: Stores, deployment: str = "") -> Booting:
    deployment = deployment or f"rtml-{service}"
    pod = find(objects, "Deployment", deployment)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    module = container["command"][-1]
    assert (REPO_ROOT / module.replace(".", "/") / "__main__.py").is_file(), f"{module} has no __main__: it cannot boot"
    workdir = stores.scratch / deployment
    env = _local_env(_container_env(objects, container), stores, workdir)
    log_path = workdir / "service.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(_argv(container), env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    return Booting(process, env[f"RTML_{service.upper()}_PORT"], container, pod, log_path)


@pytest.fixture(scope="module")
def booting(applied: tuple[dict[str, Any], ...], stores: Stores) -> Iterator[dict[str, Booting]]:
    """All four services started at once (as the Deployments start together); each test then waits on its own."""
    started: dict[str, Booting] = {}
    try:
        for service in RTML_SERVICES:
            started[service] = _start(service, applied, stores)
        yield started
    finally:
        for booted in started.values():
            if booted.process.poll() is None:
                booted.process.send_signal(signal.SIGTERM)
        for booted in started.values():
            try:
                booted.process.wait(timeout=booted.pod["terminationGracePeriodSeconds"])
            except subprocess.TimeoutExpired:
                booted.process.kill()
                booted.process.wait()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)


@pytest.mark.parametrize("service", RTML_SERVICES)
def test_service_boots_from_the_rendered_chart_and_becomes_ready(service: str, booting: dict[str, Booting]) -> None:
    _ready_then_terminated(service, booting[service])


def test_split_feature_stages_boot_from_the_rendered_chart(applied: tuple[dict[str, Any], ...], stores: Stores) -> None:
    """feature.splitStages: each stage's Deployment boots as rendered, runs its own stage only
    (its group owns every partition of that stage, none of the others) and stops on SIGTERM."""
    objects = rendered_objects("split-stages")
    stages = ("user", "label", "merchant")
    # All three at once, as their Deployments start together: each applies the Feast repo at
    # start, and the chart's S3 registry is written whole, so the applies may overlap.
    started: dict[str, Booting] = {}
    try:
        for stage in stages:
            started[stage] = _start("feature", objects, stores, deployment=f"rtml-feature-{stage}")
        for stage, booted in started.items():
            _wait_ready(f"feature-{stage}", booted)
            metrics = _get(f"http://127.0.0.1:{booted.port}/metrics")[1]
            owned = {
                line.split('stage="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("rtml_feature_assigned_partitions{")
            }
            assert set(owned) == {stage} and owned[stage] > 0, f"{stage} process owns {owned}"
        for stage in stages:
            _ready_then_terminated(f"feature-{stage}", started.pop(stage))
    finally:
        for booted in started.values():
            booted.process.kill()
            booted.process.wait()


def _wait_ready(name: str, booted: Booting) -> None:
    process, container = booted.process, booted.container
    base = f"http://127.0.0.1:{booted.port}"
    status, body = 0, ""
    # An upper bound for a wedged service, not a speed assertion: the loop ends at the first 200.
    deadline = time.monotonic() + READY_WAIT_S
    while time.monotonic() < deadline and process.poll() is None:
        status, body = _get(base + container["readinessProbe"]["httpGet"]["path"])
        if status == 200:
            break
        time.sleep(0.5)
    assert process.poll() is None, f"{name} exited with {process.returncode}:\n{booted.log_tail()}"
    assert status == 200, f"{name} never became ready (last {status}: {body[:300]}):\n{booted.log_tail()}"


def _ready_then_terminated(name: str, booted: Booting) -> None:
    _wait_ready(name, booted)
    process, container = booted.process, booted.container
    base = f"http://127.0.0.1:{booted.port}"
    assert _get(base + container["livenessProbe"]["httpGet"]["path"])[0] == 200
    assert _get(f"{base}/metrics")[0] == 200
    # What the kubelet does at pod deletion after preStop: SIGTERM, then the grace period.
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=booted.pod["terminationGracePeriodSeconds"]) in (0, -signal.SIGTERM), booted.log_tail()
