"""Kafka over SASL_SSL: the local broker with a CA and certificate made at start, every client authenticating.

The suite runs its own stack here (not the shared session one): services, topic creation, the demo
shop, the watcher and the staff CLI all connect to the broker's SASL_SSL listener only.
"""

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from ordermesh_contracts import HoldOrder, topics
from ordermesh_devstack.demo import Watcher, publish_orders
from ordermesh_devstack.stack import LocalStack, StackConfig
from ordermesh_ops.client import Connection, send_command
from ordermesh_servicekit.kafka_clients import KafkaClientSettings, aiokafka_options
from support import eventually, fetch


@pytest.fixture(scope="module")
async def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    """The whole suite on a broker whose clients connect over SASL_SSL with SCRAM-SHA-512."""
    suite = LocalStack(
        StackConfig(
            run_dir=tmp_path_factory.mktemp("secure-stack"),
            ship_delay_seconds=0.2,
            kafka_sasl_ssl="SCRAM-SHA-512",
        )
    )
    try:
        await suite.start()
        yield suite
    finally:
        await asyncio.to_thread(suite.stop)


def _service_with(stack: LocalStack, service: str, **changes: str | None) -> subprocess.CompletedProcess:
    env = stack._service_env(service, 0, f"{service}-refused")
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "-m", f"ordermesh_{service}"], env=env, capture_output=True, text=True, timeout=120
    )


async def test_a_card_order_completes_with_every_client_connected_over_sasl_ssl_with_scram(secure_stack):
    assert secure_stack.kafka_env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert secure_stack.bootstrap == secure_stack._kafka.secure_bootstrap != secure_stack._kafka.bootstrap
    watcher = Watcher(secure_stack.bootstrap, security=secure_stack.kafka_security)
    await watcher.start()
    try:
        assert await publish_orders(secure_stack.bootstrap, watcher, 1, 10.0, 910_001, **secure_stack.kafka_security) == 1
        await eventually(lambda: watcher.completed() == 1, timeout=120)
    finally:
        await watcher.stop()
    [order_id] = watcher.tracks
    [row] = await fetch(secure_stack.service_dsns["orders"], "SELECT stage FROM orders WHERE order_id = $1", order_id)
    assert row["stage"] == "completed"
    [payment] = await fetch(secure_stack.service_dsns["payments"], "SELECT status FROM payments WHERE order_id = $1", order_id)
    assert payment["status"] == "captured"


async def test_the_staff_cli_gets_its_command_answered_over_sasl_ssl_with_plain(secure_stack, tmp_path):
    (user, password), = secure_stack._kafka.sasl_ssl.plain_users.items()
    password_file = tmp_path / "password"
    password_file.write_text(password)
    env_file = tmp_path / "ops.env"
    env_file.write_text(
        f"KAFKA_BOOTSTRAP_SERVERS={secure_stack.bootstrap}\nKAFKA_SECURITY_PROTOCOL=SASL_SSL\n"
        f"KAFKA_SASL_MECHANISM=PLAIN\nKAFKA_SASL_USERNAME={user}\nKAFKA_SASL_PASSWORD_FILE={password_file}\n"
        f"KAFKA_SSL_CA_FILE={secure_stack._kafka.tls.ca_file}\n"
    )
    connection = Connection.from_environment(env_file)
    assert connection.kafka_security["sasl_mechanism"] == "PLAIN"
    command = HoldOrder(shop_id="demo-shop", issued_by="tls-test", order_id=uuid4(), reason="no such order")
    reply = await send_command(connection, topics.ORDERS_COMMANDS, command, timeout=60)
    assert reply["command_id"] == str(command.event_id)
    assert reply["type"] == "CommandRejected"


def test_a_service_given_a_wrong_kafka_password_exits_at_start_with_one_clear_line(secure_stack):
    finished = _service_with(secure_stack, "points", KAFKA_SASL_PASSWORD_FILE=None, KAFKA_SASL_PASSWORD="not-the-password")
    assert finished.returncode == 2
    output = finished.stdout + finished.stderr
    assert "Traceback" not in output
    refusals = [line for line in output.splitlines() if "Kafka refused" in line]
    assert len(refusals) == 1, output
    assert "invalid credentials" in refusals[0] and "not-the-password" not in output
    assert len([line for line in output.splitlines() if line.strip()]) <= 3, output


def test_a_service_that_does_not_trust_the_brokers_certificate_exits_at_start_naming_the_ca_setting(secure_stack):
    finished = _service_with(secure_stack, "notify", KAFKA_SSL_CA_FILE=None)
    assert finished.returncode == 2
    output = finished.stdout + finished.stderr
    assert "Traceback" not in output
    [line] = [line for line in output.splitlines() if "Kafka refused" in line]
    assert "KAFKA_SSL_CA_FILE" in line


def test_client_settings_read_the_password_from_a_mounted_file_and_never_show_it(tmp_path, monkeypatch):
    (tmp_path / "KAFKA_SASL_PASSWORD").write_text("from-the-secret\n")
    monkeypatch.setenv("ORDERMESH_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "shop")
    settings = KafkaClientSettings()
    options = aiokafka_options(settings)
    assert options["sasl_plain_password"] == "from-the-secret"
    assert "ssl_context" not in options
    assert "from-the-secret" not in repr(settings) and "from-the-secret" not in settings.describe()


def test_sasl_without_a_user_is_refused_with_the_setting_named(monkeypatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.delenv("KAFKA_SASL_USERNAME", raising=False)
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME"):
        KafkaClientSettings()
