"""The one root Dockerfile and the skaffold artifacts that build its targets follow the image policy:
pinned slim base, multi-stage, non-root USER, only each service's extra from the pinned set, CPU-only
torch where torch is needed, and the CMD the chart runs."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from k8s_chart import REPO_ROOT, RTML_SERVICES, find, rendered_objects


def _skaffold() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text()))


def _loadtest_patches() -> list[dict[str, Any]]:
    profile = next(p for p in _skaffold()["profiles"] if p["name"] == "loadtest")
    return [p for p in profile["patches"] if p["path"] == "/build/artifacts/-"]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped (enough for policy checks)."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, value = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip()))
    assert not pending, "Dockerfile ends inside a line continuation"
    return instructions


def _needs_torch(extra: str) -> bool:
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return any(dep.startswith("torch") for dep in extras[extra])


@dataclass(frozen=True)
class Stage:
    name: str
    parent: str  # the image or the stage it starts FROM
    instructions: list[Instruction]


def stages(instructions: list[Instruction]) -> dict[str, Stage]:
    found: dict[str, Stage] = {}
    for i, ins in enumerate(instructions):
        if ins.keyword != "FROM":
            continue
        parent, _, name = ins.value.partition(" AS ")
        end = next((j for j in range(i + 1, len(instructions)) if instructions[j].keyword == "FROM"), len(instructions))
        found[name.strip()] = Stage(name.strip(), parent.strip(), instructions[i + 1 : end])
    return found


def lineage(all_stages: dict[str, Stage], target: str) -> list[Stage]:
    """The target's instructions as the image gets them: its FROM chain, base first."""
    chain = [all_stages[target]]
    while chain[-1].parent in all_stages:
        chain.append(all_stages[chain[-1].parent])
    return list(reversed(chain))


DOCKERFILE = parse_dockerfile((REPO_ROOT / "Dockerfile").read_text())
STAGES = stages(DOCKERFILE)
ARTIFACTS = {
    a["image"].removeprefix("rtml-"): a
    for a in [*_skaffold()["build"]["artifacts"], *(p["value"] for p in _loadtest_patches())]
}


def test_every_image_is_a_target_of_the_one_dockerfile_with_its_own_extra() -> None:
    assert sorted(ARTIFACTS) == sorted([*RTML_SERVICES, "loadtest"])
    for service, artifact in ARTIFACTS.items():
        docker = artifact["docker"]
        assert (artifact.get("context", "."), docker["dockerfile"]) == (".", "Dockerfile")
        assert docker["target"] == service and docker["buildArgs"]["EXTRA"] == service, "only its own extra"
        torch_index = docker["buildArgs"].get("TORCH_INDEX")
        if _needs_torch(service):
            assert torch_index == "https://download.pytorch.org/whl/cpu", "CPU-only torch"
        else:
            assert torch_index is None, "no extra index for an image without torch"


def test_the_build_stage_installs_one_extra_from_the_pinned_set() -> None:
    for base in (stage.parent for stage in STAGES.values() if stage.parent not in STAGES):
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", base), f"unpinned base {base}"
    installs = [i.value for i in DOCKERFILE if i.keyword == "RUN" and "pip install" in i.value]
    assert len(installs) == 1
    install = installs[0]
    assert "-c constraints.txt" in install, "install from the pinned set"
    assert re.findall(r"\.\[([^\]]+)\]", install) == ["${EXTRA}"]
    assert '${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"}' in install, "the torch index only when asked for"
    assert 'test -n "$EXTRA"' in install, "a build without EXTRA fails instead of installing nothing"


@pytest.mark.parametrize("service", [*RTML_SERVICES, "loadtest"])
def test_each_target_follows_the_image_policy(service: str) -> None:
    chain = lineage(STAGES, service)
    runtime = [ins for stage in chain for ins in stage.instructions]
    assert all(stage.name != "build" for stage in chain), "multi-stage: the build stage stays out of the image"
    assert any(i.keyword == "COPY" and i.value.startswith("--from=build") for i in runtime)
    users = [i.value for i in runtime if i.keyword == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and int(users[-1].split(":")[0]) > 0, "non-root numeric USER"
    env = " ".join(i.value for i in runtime if i.keyword == "ENV")
    assert "PYTHONUNBUFFERED=1" in env and "PIP_NO_CACHE_DIR=1" in env
    cmd = json.loads(next(i.value for i in reversed(runtime) if i.keyword == "CMD"))
    expose = [i.value for i in runtime if i.keyword == "EXPOSE"]
    if service == "loadtest":
        assert cmd[:3] == ["python", "-m", "services.loadtest"] and expose == []
        return
    deployment = find(rendered_objects("default"), "Deployment", f"rtml-{service}")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert cmd == container["command"] + container.get("args", []), "the image runs what the chart runs"
    assert expose == [str(container["ports"][0]["containerPort"])]


def test_constraints_pin_cpu_torch() -> None:
    pins = (REPO_ROOT / "constraints.txt").read_text().splitlines()
    assert any(re.fullmatch(r"torch==[\d.]+\+cpu", p.strip()) for p in pins)


def test_dockerignore_keeps_the_build_context_small() -> None:
    ignored = {line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".git", "data", "tests"} <= ignored
    for kept in ("services", "feature_repo", "pipelines", "constraints.txt", "pyproject.toml", "README.md"):
        assert kept not in ignored
    # Only the locustfile of loadtests/ goes in, for the loadtest target.
    assert {"loadtests/*", "!loadtests/locustfile.py"} <= ignored


def test_parser_joins_continuations_and_skips_comments() -> None:
    parsed = parse_dockerfile('# c\nFROM a AS b\nRUN x \\\n  # inner\n  && y\nCMD ["z"]\n')
    assert parsed == [Instruction("FROM", "a AS b"), Instruction("RUN", "x  && y"), Instruction("CMD", '["z"]')]
