"""Reliability on the real broker and databases: redelivery, a crash mid-stream, and dependencies that come late."""

import asyncio
import os
import sys

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from ordermesh_contracts import order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.sandboxes.smtp_sink import read_mails
from ordermesh_devstack.processes import free_port
from ordermesh_devstack.stack import ManagedProcess
from ordermesh_servicekit.lag import group_lag
from support import eventually, fetch, publish_raw


async def test_an_event_redelivered_after_its_commit_has_one_effect_in_every_service(stack, recorder):
    order = demo_order(920_001)
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    [accepted] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=order_id)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)

    # The exact bytes again, as Kafka redelivers a record whose offset was never committed.
    await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, accepted.value, key=accepted.key)
    marker = demo_order(920_002)
    marker_id = order_id_for(marker.shop_id, marker.channel.value, marker.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, marker.model_dump_json().encode())
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=marker_id, timeout=90)

    calls = await fetch(stack.service_dsns["payments"], "SELECT operation FROM gateway_calls WHERE order_id = $1", order_id)
    assert sorted(c["operation"] for c in calls) == ["authorize", "capture"]
    ledger = await fetch(stack.service_dsns["points"], "SELECT kind FROM ledger WHERE order_id = $1", order_id)
    assert sorted(e["kind"] for e in ledger) == ["accrued", "confirmed"]
    mails = await fetch(stack.service_dsns["notify"], "SELECT kind FROM mail_log WHERE order_id = $1 AND status = 'sent'", order_id)
    assert sorted(m["kind"] for m in mails) == ["order_confirmation", "shipped"]
    assert len([m for m in read_mails(stack.maildir) if m["To"] == order.customer.email]) == 2
    assert len(recorder.on(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id)) == 1


def consumer_counters(stack, service: str) -> tuple[float, float]:
    """(batches taken, offset commits made) by the service's consumer so far, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{stack.processes[service].http_port}/metrics", timeout=10).text
    values = {
        line.split()[0]: float(line.split()[1]) for line in text.splitlines()
        if line.startswith(("ordermesh_consumer_batches_total", "ordermesh_consumer_offset_commits_total"))
    }
    return values["ordermesh_consumer_batches_total"], values["ordermesh_consumer_offset_commits_total"]


async def uncommitted_records(bootstrap: str, group: str) -> int:
    admin, reader = AIOKafkaAdminClient(bootstrap_servers=bootstrap), AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await reader.start()
    try:
        return sum(partition.lag for partition in await group_lag(admin, reader, group))
    finally:
        await reader.stop()
        await admin.close()


async def test_a_busy_consumer_commits_less_often_than_it_takes_batches_and_commits_everything_once_idle(stack, recorder):
    batches_before, commits_before = consumer_counters(stack, "orders")
    orders = [demo_order(925_000 + n) for n in range(40)]
    for order in orders:
        await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    for order in orders:
        order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
        await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)

    batches_after, commits_after = consumer_counters(stack, "orders")
    assert 0 < commits_after - commits_before < batches_after - batches_before

    async def all_committed() -> bool:  # once idle, a restart would deliver nothing again
        return await uncommitted_records(stack.bootstrap, "ordermesh-orders") == 0

    await eventually(all_committed, timeout=15)


@pytest.mark.parametrize("victim", ["orders", "payments"])
async def test_a_service_killed_mid_stream_and_restarted_loses_and_duplicates_no_order(stack, recorder, victim):
    orders = [demo_order(930_000 + n + (0 if victim == "orders" else 100)) for n in range(30)]
    order_ids = {order_id_for(o.shop_id, o.channel.value, o.external_order_no) for o in orders}

    async def publish_all():
        for order in orders:
            await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())

    publishing = asyncio.create_task(publish_all())
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", count=1, timeout=60,
                            order_id=next(iter(order_id_for(o.shop_id, o.channel.value, o.external_order_no) for o in orders[:1])))
    stack.kill_service(victim)
    await publishing
    await asyncio.sleep(2)
    await stack.restart_service(victim)

    def completed_ids():
        return {m.json()["order_id"] for m in recorder.on(topics.ORDERS_EVENTS, type="OrderCompleted")}

    await eventually(lambda: {str(i) for i in order_ids} <= completed_ids(), timeout=180)
    rows = await fetch(stack.service_dsns["orders"], "SELECT order_id, stage FROM orders WHERE order_id = ANY($1::uuid[])", list(order_ids))
    assert len(rows) == 30 and {r["stage"] for r in rows} == {"completed"}
    for order_id in order_ids:
        completions = {m.json()["event_id"] for m in recorder.on(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id)}
        assert len(completions) == 1
    captures = await fetch(
        stack.service_dsns["payments"],
        "SELECT order_id, count(*) AS n FROM gateway_calls WHERE operation = 'capture' AND order_id = ANY($1::uuid[]) GROUP BY order_id",
        list(order_ids),
    )
    assert len(captures) == 30 and all(c["n"] == 1 for c in captures)


async def _forward(listen_port: int, target_port: int) -> asyncio.base_events.Server:
    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    return await asyncio.start_server(handle, "127.0.0.1", listen_port)


async def test_a_service_started_before_kafka_and_postgres_are_reachable_waits_and_then_works(stack, tmp_path):
    pg_port, kafka_port, http_port = free_port(), free_port(), free_port()
    real_pg_port = int(stack.service_dsns["points"].rsplit(":", 1)[1].split("/")[0])
    real_kafka_port = int(stack.bootstrap.rsplit(":", 1)[1])
    log_path = tmp_path / "late-points.log"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka_port}",
        "DATABASE_URL": stack.service_dsns["points"].replace(f":{real_pg_port}/", f":{pg_port}/"),
        "ORDERMESH_HTTP_PORT": str(http_port),
        "ORDERMESH_STARTUP_RETRY_MAX_SECONDS": "1",
    }
    late = ManagedProcess("late-points", [sys.executable, "-m", "ordermesh_points"], env, log_path, http_port)
    late.start()
    try:
        # The service checks Kafka access before anything else, then PostgreSQL: open each once it says it waits for it.
        await eventually(lambda: "kafka not reachable yet" in _log(log_path), timeout=120)
        assert late.alive
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.TransportError):
                await client.get(f"http://127.0.0.1:{http_port}/readyz")
        kafka_proxy = await _forward(kafka_port, real_kafka_port)
        await eventually(lambda: "postgres not reachable yet" in _log(log_path), timeout=120)
        assert late.alive
        pg_proxy = await _forward(pg_port, real_pg_port)

        async def ready():
            try:
                async with httpx.AsyncClient() as client:
                    return (await client.get(f"http://127.0.0.1:{http_port}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, timeout=60)
        assert "Traceback" not in log_path.read_text()
    finally:
        late.stop()
        pg_proxy.close() if "pg_proxy" in locals() else None
        kafka_proxy.close() if "kafka_proxy" in locals() else None


async def test_a_service_role_cannot_connect_to_another_services_database(stack):
    orders_dsn = stack.service_dsns["orders"]
    assert (await fetch(orders_dsn, "SELECT current_database() AS db"))[0]["db"] == "ordermesh_orders"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(orders_dsn.rsplit("/", 1)[0] + "/ordermesh_payments")


def _log(path) -> str:
    return path.read_text() if path.exists() else ""
