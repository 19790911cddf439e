"""Model registry on any fsspec filesystem (file:// here, s3:// in the cluster).

Layout under the root URI::

    <name>/versions/<version>/model.json      the ModelVersion record
    <name>/versions/<version>/artifact/...    files the loader reads
    <name>/champion.json                      {"version": ..., "history": [...]} - the promotion log

A single writer (the training pipeline's gate or an operator's CLI) is assumed;
the champion pointer is replaced in one write so readers never see half a state.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
from fsspec import AbstractFileSystem

from services.registry.schema import ModelStage, ModelVersion

_VERSION_RE = re.compile(r"^v(\d{4,})$")


class RegistryError(Exception):
    pass


def filesystem(uri: str, s3_endpoint: str = "") -> tuple[AbstractFileSystem, str]:
    """The filesystem and root path behind a registry URI."""
    options: dict[str, Any] = {}
    if uri.startswith("s3://") and s3_endpoint:
        options["client_kwargs"] = {"endpoint_url": s3_endpoint}
    fs, root = fsspec.core.url_to_fs(uri, **options)
    return fs, root.rstrip("/")


class ModelRegistry:
    def __init__(self, uri: str, s3_endpoint: str = "") -> None:
        self.uri = uri.rstrip("/")
        self.fs, self.root = filesystem(uri, s3_endpoint)
        if uri.startswith("file://"):
            self.fs.makedirs(self.root, exist_ok=True)

    # ---- paths ---------------------------------------------------------------------
    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _uri(self, *parts: str) -> str:
        return "/".join([self.uri, *parts])

    def _write_json(self, path: str, payload: Any) -> None:
        data = json.dumps(payload, indent=2, sort_keys=True, default=str).encode()
        if self.fs.protocol in ("file", ("file", "local")) or "file" in self.fs.protocol:
            tmp = f"{path}.tmp-{os.getpid()}"
            with self.fs.open(tmp, "wb") as out:
                out.write(data)
            os.replace(tmp, path)  # atomic on a local filesystem
        else:
            with self.fs.open(path, "wb") as out:  # an S3 PUT is atomic per object
                out.write(data)

    def _read_json(self, path: str) -> Any:
        with self.fs.open(path, "rb") as src:
            return json.loads(src.read())

    # ---- versions ------------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.fs.exists(self.root):
            return []
        return sorted(Path(p).name for p in self.fs.ls(self.root, detail=False) if self.fs.isdir(p))

    def versions(self, name: str) -> list[ModelVersion]:
        base = self._path(name, "versions")
        if not self.fs.exists(base):
            return []
        found = []
        for entry in self.fs.ls(base, detail=False):
            version = Path(entry).name
            if _VERSION_RE.match(version) and self.fs.exists(self._path(name, "versions", version, "model.json")):
                found.append(self.get(name, version))
        return sorted(found, key=lambda v: v.version)

    def get(self, name: str, version: str) -> ModelVersion:
        path = self._path(name, "versions", version, "model.json")
        if not self.fs.exists(path):
            raise RegistryError(f"model {name!r} has no version {version!r}")
        return ModelVersion.model_validate(self._read_json(path))

    def _next_version(self, name: str) -> str:
        numbers = [int(m.group(1)) for v in self.versions(name) if (m := _VERSION_RE.match(v.version))]
        return f"v{(max(numbers) + 1 if numbers else 1):04d}"

    def register(self, record: ModelVersion, artifact_dir: Path) -> ModelVersion:
        """Store a new candidate: copy its artifact files, then write its record."""
        if not artifact_dir.is_dir():
            raise RegistryError(f"artifact directory {artifact_dir} does not exist")
        version = self._next_version(record.name)
        target = self._path(record.name, "versions", version, "artifact")
        self.fs.makedirs(target, exist_ok=True)
        for file in sorted(p for p in artifact_dir.rglob("*") if p.is_file()):
            rel = file.relative_to(artifact_dir).as_posix()
            self.fs.makedirs(f"{target}/{rel}".rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(file), f"{target}/{rel}")
        stored = record.model_copy(
            update={
                "version": version,
                "stage": ModelStage.CANDIDATE,
                "artifact_uri": self._uri(record.name, "versions", version, "artifact"),
            }
        )
        self._save(stored)
        return stored

    def _save(self, record: ModelVersion) -> None:
        self._write_json(
            self._path(record.name, "versions", record.version, "model.json"), record.model_dump(mode="json")
        )

    def download(self, record: ModelVersion, dest: Path) -> Path:
        """Fetch a version's artifact into ``dest`` (a no-op copy on the local filesystem)."""
        source = self._path(record.name, "versions", record.version, "artifact")
        dest.mkdir(parents=True, exist_ok=True)
        for remote in self.fs.find(source):
            rel = remote[len(source) + 1 :]
            local = dest / rel
            local.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(remote, str(local))
        return dest

    # ---- stages --------------------------------------------------------------------
    def _pointer(self, name: str) -> dict[str, Any]:
        path = self._path(name, "champion.json")
        if not self.fs.exists(path):
            return {"version": None, "history": []}
        return dict(self._read_json(path))

    def champion(self, name: str) -> ModelVersion | None:
        version = self._pointer(name).get("version")
        return self.get(name, version) if version else None

    def history(self, name: str) -> list[dict[str, Any]]:
        return list(self._pointer(name).get("history", []))

    def promote(self, name: str, version: str, reason: str = "manual") -> ModelVersion:
        """Make ``version`` the champion; the previous champion is archived."""
        record = self.get(name, version)
        pointer = self._pointer(name)
        previous = pointer.get("version")
        if previous == version:
            raise RegistryError(f"{name} {version} is already the champion")
        now = datetime.now(UTC)
        if previous:
            self._save(self.get(name, previous).model_copy(update={"stage": ModelStage.ARCHIVED}))
        promoted = record.model_copy(update={"stage": ModelStage.CHAMPION, "promoted_at": now})
        self._save(promoted)
        history = [*pointer.get("history", []), {"version": version, "at": now.isoformat(), "reason": reason}]
        self._write_json(self._path(name, "champion.json"), {"version": version, "history": history})
        return promoted

    def rollback(self, name: str) -> ModelVersion:
        """Restore the champion before the current one."""
        history = self.history(name)
        current = self._pointer(name).get("version")
        earlier = [h["version"] for h in history if h["version"] != current]
        if not current or not earlier:
            raise RegistryError(f"{name} has no earlier champion to roll back to")
        return self.promote(name, earlier[-1], reason=f"rollback from {current}")
