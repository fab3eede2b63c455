"""docker-compose.yml runs the same suite: no Docker engine here, so check that nothing a service needs is missing."""

import re
from pathlib import Path

import yaml

from ordermesh_devstack.stack import SERVICES, LocalStack, StackConfig

ROOT = Path(__file__).resolve().parent.parent
LOCAL_ONLY = {"PYTHONUNBUFFERED", "ORDERMESH_HTTP_PORT", "ORDERMESH_LOG_LEVEL"}


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _settings_the_local_runtime_gives(service: str) -> set[str]:
    stack = LocalStack(StackConfig(run_dir=Path("/nonexistent")), bootstrap="b:1", service_dsns={s: "dsn" for s in SERVICES})
    stack._sandbox_ports = {"gateway": 1, "warehouse": 2, "smtp": 3}
    stack._warehouse_secret = "s"
    env = stack._service_env(service, 1)
    return {key for key in env if (key.startswith("ORDERMESH_") or key in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"))} - LOCAL_ONLY


def test_compose_runs_kafka_in_kraft_mode_postgres_and_every_service():
    services = _compose()["services"]
    assert set(SERVICES) <= set(services)
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["postgres"]["image"].startswith("postgres:")
    for name in SERVICES:
        assert set(services[name]["depends_on"]) == {"kafka", "postgres"}


def test_every_setting_a_service_needs_is_set_in_compose():
    services = _compose()["services"]
    for name in SERVICES:
        given = set(services[name]["environment"])
        missing = _settings_the_local_runtime_gives(name) - given
        assert not missing, f"{name} lacks {missing} in docker-compose.yml"


def test_each_service_connects_with_its_own_role_to_its_own_database_created_at_init():
    init_sql = (ROOT / "deploy" / "docker" / "init-databases.sql").read_text()
    services = _compose()["services"]
    for name in SERVICES:
        dsn = services[name]["environment"]["DATABASE_URL"]
        role, password, database = re.match(r"postgresql://([^:]+):([^@]+)@postgres:5432/(\w+)", dsn).groups()
        assert role == database == f"ordermesh_{name}"
        assert f"CREATE ROLE {role} LOGIN PASSWORD '{password}'" in init_sql
        assert f"GRANT CONNECT ON DATABASE {database} TO {role}" in init_sql


def test_compose_creates_every_topic_and_its_dead_letter_topic():
    from ordermesh_contracts.topics import ALL_TOPICS

    command = " ".join(_compose()["services"]["topics"]["command"])
    for topic in ALL_TOPICS:
        assert topic in command
    assert "$$t.dlq" in command
