"""The Helm binary the chart tests use: built once from the Go module proxy into the ordermesh cache."""

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

from .kafka import cache_root

HELM_VERSION = "v3.22.0"


def ensure_helm(version: str = HELM_VERSION) -> Path:
    """Path of a `helm` binary of `version`: `go install helm.sh/helm/v3/cmd/helm@<version>` into the cache once."""
    base = cache_root() / f"helm-{version}"
    binary = base / "helm"
    if binary.exists():
        return binary
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return binary
        go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
        if go is None:
            raise RuntimeError("Go is not installed; it is needed to build helm from the Go module proxy")
        done = subprocess.run(
            [go, "install", f"helm.sh/helm/v3/cmd/helm@{version}"],
            env={**os.environ, "GOBIN": str(base), "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"},
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0 or not binary.exists():
            raise RuntimeError(f"go install helm {version} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return binary
