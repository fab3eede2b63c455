"""docker-compose.yml runs the suite: no Docker engine here, so check it against what each program really reads.

The settings each service reads come from its pydantic settings class (not from a list kept by hand):
every one must be set in compose (directly or as `<VARIABLE>_FILE` pointing at a mounted secret), and
nothing unknown may be set. The init job, `ordermesh-init`, is run for real against the running suite.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from aiokafka.admin import AIOKafkaAdminClient

from ordermesh_contracts.topics import all_topics_with_dead_letters
from ordermesh_devstack.settings_doc import SERVICES, settings_classes, settings_of, variables
from support import fetch

ROOT = Path(__file__).resolve().parent.parent
KNOWN_PREFIXES = ("ORDERMESH_", "KAFKA_", "DATABASE_URL")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _secret_files(compose: dict, service: str) -> dict[str, Path]:
    """Mount path in the container → file in the repository, for the secrets a compose service mounts."""
    declared = compose["secrets"]
    return {f"/run/secrets/{name}": ROOT / declared[name]["file"] for name in compose["services"][service].get("secrets", [])}


def _check_settings(compose: dict, name: str, reads: set[str]) -> None:
    environment = compose["services"][name]["environment"]
    mounted = _secret_files(compose, name)
    read_as = {key: key if key in reads else key.removesuffix("_FILE") for key in environment}
    unknown = {key for key, setting in read_as.items() if key.startswith(KNOWN_PREFIXES) and setting not in reads}
    assert not unknown, f"{name} sets {unknown}, which it does not read"
    for key, value in environment.items():
        if key not in reads and read_as[key] in reads:
            assert value in mounted, f"{name}: {key} points at {value}, which is not a secret it mounts"
            assert mounted[value].is_file()
    given = set(read_as.values())
    settings = settings_classes()
    cls = settings["init job"] if name.endswith("-init") else settings[name]
    missing = [s.variable for s in settings_of(cls) if not ({s.variable, *s.aliases} & given)]
    assert not missing, f"{name} lacks {missing} in docker-compose.yml (add each with its default; secrets as *_FILE)"


def test_compose_runs_kafka_in_kraft_mode_and_postgres_from_the_official_images():
    services = _compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert "healthcheck" in kafka and "healthcheck" in services["postgres"]
    assert services["postgres"]["image"].startswith("postgres:")


def test_every_service_starts_only_after_its_init_job_which_waits_for_kafka_and_postgres():
    services = _compose()["services"]
    for name in SERVICES:
        job = services[f"{name}-init"]
        assert job["command"] == ["ordermesh-init"]
        assert job["environment"]["SERVICE"] == name
        assert {dep: cond["condition"] for dep, cond in job["depends_on"].items()} == {
            "kafka": "service_healthy",
            "postgres": "service_healthy",
        }
        assert services[name]["depends_on"] == {f"{name}-init": {"condition": "service_completed_successfully"}}
        assert services[name]["image"] == job["image"]
        assert job["build"] == {"context": ".", "dockerfile": "deploy/docker/Dockerfile", "args": {"SERVICE": name}}


def test_every_setting_each_service_reads_is_set_in_compose_and_nothing_unknown():
    compose = _compose()
    for name, cls in settings_classes().items():
        if name == "init job":
            continue
        _check_settings(compose, name, variables(cls))
        _check_settings(compose, f"{name}-init", variables(cls) | variables(settings_classes()["init job"]))


def test_staff_surfaces_are_published_each_on_its_own_host_port():
    services = _compose()["services"]
    host_ports = []
    for name in SERVICES:
        [mapping] = services[name]["ports"]
        host, container = mapping.split(":")
        assert container == services[name]["environment"]["ORDERMESH_HTTP_PORT"]
        host_ports.append(host)
    assert len(set(host_ports)) == len(SERVICES)


def test_the_sandboxes_are_an_opt_in_profile_and_no_service_image_carries_them():
    services = _compose()["services"]
    for name in ("payment-gateway", "localstripe", "warehouse", "smtp"):
        assert services[name]["profiles"] == ["sandboxes"]
        assert services[name]["image"] == "ordermesh-sandboxes:local"
    for name, service in services.items():
        if "ordermesh_devstack" in str(service.get("command", "")):
            assert service.get("profiles") == ["sandboxes"], name
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    assert "deploy/devstack/src" not in dockerfile


def test_each_service_connects_with_its_own_role_to_its_own_database_created_at_init():
    compose = _compose()
    init_sql = (ROOT / "deploy" / "docker" / "init-databases.sql").read_text()
    for name in SERVICES:
        pointer = compose["services"][name]["environment"]["DATABASE_URL_FILE"]
        dsn = _secret_files(compose, name)[pointer].read_text()
        role, password, database = re.fullmatch(r"postgresql://([^:]+):([^@]+)@postgres:5432/(\w+)", dsn).groups()
        assert role == database == f"ordermesh_{name}"
        assert f"CREATE ROLE {role} LOGIN PASSWORD '{password}'" in init_sql
        assert f"GRANT CONNECT ON DATABASE {database} TO {role}" in init_sql


async def test_the_init_job_creates_every_topic_and_migrates_the_service_database_read_from_a_file(
    stack, fresh_database, tmp_path
):
    dsn_file = tmp_path / "database_url"
    dsn_file.write_text(fresh_database + "\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ORDERMESH_", "KAFKA_", "DATABASE_URL"))},
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "DATABASE_URL_FILE": str(dsn_file),
        "SERVICE": "points",
    }
    done = subprocess.run(
        [Path(sys.executable).parent / "ordermesh-init"], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    applied = await fetch(fresh_database, "SELECT component, version FROM schema_migrations ORDER BY component, version")
    components = {row["component"] for row in applied}
    assert components == {"servicekit", "points"}
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        assert set(all_topics_with_dead_letters()) <= set(await admin.list_topics())
    finally:
        await admin.close()
