"""Two replicas of every service on the real broker: replicas stopped, killed and added mid-run, a rebalance in the
middle of a batch, and a message that reaches payments before the one it depends on. Nothing is lost, no side
effect is repeated, and each order's events are applied in order.

This module runs its own suite (two replicas of each service), separate from the shared one-replica `stack`.
"""

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from ordermesh_contracts import Payment, PaymentMethod, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.recovery import rebalances
from ordermesh_devstack.sandboxes.smtp_sink import read_mails
from ordermesh_devstack.stack import LocalStack, StackConfig
from support import TopicRecorder, eventually, fetch, publish_raw

GOLDEN = Path(__file__).parent.parent / "contracts" / "tests" / "golden"
STAGES = ["awaiting_payment", "awaiting_allocation", "ready_to_ship", "shipping", "shipped", "completed"]


@pytest.fixture(scope="module")
async def replicas(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    """The whole suite with two replicas of every service, each with its own port and instance id."""
    config = StackConfig(
        run_dir=tmp_path_factory.mktemp("replicas"), replicas=2, ship_delay_seconds=0.2, payments_check_seconds=2.0,
        service_env={"ORDERMESH_DB_POOL_SIZE": "5", "ORDERMESH_PARKED_RETRY_SECONDS": "2"},
    )
    suite = LocalStack(config)
    try:
        await suite.start()
        yield suite
    finally:
        await asyncio.to_thread(suite.stop)


@pytest.fixture(scope="module")
async def seen(replicas: LocalStack) -> AsyncIterator[TopicRecorder]:
    """Every message on every topic of the replica suite."""
    recorder = TopicRecorder(replicas.bootstrap)
    await recorder.start()
    yield recorder
    await recorder.stop()


def _id(order) -> str:
    return str(order_id_for(order.shop_id, order.channel.value, order.external_order_no))


def _mixed_orders(first: int, count: int) -> list:
    """Card orders, with every third paid cash on delivery."""
    orders = []
    for n in range(first, first + count):
        order = demo_order(n)
        if n % 3 == 0:
            order = order.model_copy(update={"payment": Payment(method=PaymentMethod.CASH_ON_DELIVERY)})
        orders.append(order)
    return orders


async def _publish(stack: LocalStack, orders: list, pause: float = 0.0) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for order in orders:
            await producer.send_and_wait(topics.SHOP_ORDERS, order.model_dump_json().encode())
            if pause:
                await asyncio.sleep(pause)
    finally:
        await producer.stop()


async def _completed(stack: LocalStack, ids: list[str]) -> bool:
    """Whether every one of `ids` is completed (not merely some)."""
    rows = await fetch(
        stack.service_dsns["orders"], "SELECT count(*) AS n FROM orders WHERE order_id = ANY($1::uuid[]) AND stage = 'completed'", ids
    )
    return rows[0]["n"] == len(set(ids))


async def _assert_each_side_effect_once(stack: LocalStack, seen: TopicRecorder, orders: list, *, notify_kills: int = 0) -> None:
    """Every payment, point, shipment and mail once. A notify replica SIGKILLed between the SMTP server accepting a
    mail and recording it re-sends that mail after restart (no sender can close that window): `notify_kills` allows,
    per kill, one more copy of each mail it may have had in flight (one per concurrent lane), with the same Message-ID."""
    ids = [_id(o) for o in orders]
    card = {_id(o) for o in orders if o.payment.method is PaymentMethod.CARD}
    dsns = stack.service_dsns
    calls = await fetch(dsns["payments"], "SELECT order_id::text, operation, count(*) AS n FROM gateway_calls WHERE order_id = ANY($1::uuid[]) GROUP BY 1, 2", ids)
    assert {(c["order_id"], c["operation"]) for c in calls} == {(i, op) for i in card for op in ("authorize", "capture")}
    assert {c["n"] for c in calls} == {1}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.processes['gateway'].http_port}") as gateway:
        authorizations = (await gateway.get("/v1/authorizations")).json()["authorizations"]
    at_gateway = Counter(a["order_id"] for a in authorizations if a["order_id"] in card)
    assert set(at_gateway) == card and set(at_gateway.values()) == {1}
    received = await fetch(dsns["payments"], "SELECT order_id::text, count(*) AS n FROM received_payments WHERE order_id = ANY($1::uuid[]) GROUP BY 1", ids)
    assert {r["order_id"] for r in received} == set(ids) - card and {r["n"] for r in received} <= {1}

    ledger = await fetch(dsns["points"], "SELECT order_id::text, kind, count(*) AS n FROM ledger WHERE order_id = ANY($1::uuid[]) GROUP BY 1, 2", ids)
    assert {r["n"] for r in ledger} == {1}
    assert {(r["order_id"], r["kind"]) for r in ledger if r["kind"] in ("accrued", "confirmed")} == {
        (i, kind) for i in ids for kind in ("accrued", "confirmed")
    }

    shipments = await fetch(dsns["shipping"], "SELECT order_id::text, count(*) AS n, count(DISTINCT tracking_number) AS t FROM shipments WHERE order_id = ANY($1::uuid[]) GROUP BY 1", ids)
    assert len(shipments) == len(ids) and {(s["n"], s["t"]) for s in shipments} == {(1, 1)}
    for order_id in ids:
        shipped = {m.json()["event_id"] for m in seen.on(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id)}
        assert len(shipped) == 1

    mails = await fetch(dsns["notify"], "SELECT order_id::text, kind, count(*) AS n FROM mail_log WHERE order_id = ANY($1::uuid[]) AND status = 'sent' GROUP BY 1, 2", ids)
    assert {m["n"] for m in mails} == {1}
    customers = {order.customer.email for order in orders}
    delivered = [mail for mail in read_mails(stack.maildir) if mail["To"] in customers]
    copies = Counter(mail["Message-ID"] for mail in delivered)
    message_ids: dict[tuple[str, str], set[str]] = {}
    for mail in delivered:
        message_ids.setdefault((mail["To"], mail["Subject"]), set()).add(mail["Message-ID"])
    for order in orders:
        to_customer = {subject: ids for (to, subject), ids in message_ids.items() if to == order.customer.email}
        # One mail per cause: a second copy, if any, is the same mail (same Message-ID), never a new one.
        assert to_customer and all(len(ids) == 1 for ids in to_customer.values()), to_customer
    resent = {message_id: n for message_id, n in copies.items() if n > 1}
    in_flight_at_a_kill = int(stack.config.service_env.get("ORDERMESH_CONSUMER_CONCURRENCY", "8"))
    assert all(n == 2 for n in resent.values()), resent
    assert len(resent) <= notify_kills * in_flight_at_a_kill, resent
    if resent:
        print(f"\n{len(resent)} mail(s) re-sent once after a notify SIGKILL, with the same Message-ID")


async def _assert_events_in_order(seen: TopicRecorder, orders: list) -> None:
    ids = {_id(o) for o in orders}
    # The database says completed before the relay has published the last events: wait for them to be read back.
    await eventually(lambda: ids <= {m.json()["order_id"] for m in seen.on(topics.ORDERS_EVENTS, type="OrderCompleted")}, timeout=120)
    for order in orders:
        order_id = _id(order)
        stages = [m.json()["to_stage"] for m in seen.on(topics.ORDERS_EVENTS, type="OrderProgressed", order_id=order_id)]
        # Each stage once, in the built-in order (a redelivered event would repeat or reorder them).
        assert stages == [s for s in STAGES if s in stages] and stages[-1] == "completed", (order_id, stages)
        completions = {m.json()["event_id"] for m in seen.on(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id)}
        assert len(completions) == 1


async def test_orders_complete_once_each_while_replicas_are_stopped_killed_and_added(replicas, seen) -> None:
    stack = replicas
    orders = _mixed_orders(1_200_000, 150)
    ids = [_id(o) for o in orders]
    started = time.monotonic()
    publishing = asyncio.create_task(_publish(stack, orders, pause=0.05))

    await eventually(lambda: _completed(stack, ids[:10]), timeout=120)
    stack.kill_service("payments-2")
    stack.processes["notify-2"].stop()
    await asyncio.sleep(1)
    stack.kill_service("shipping")
    new_points = stack.add_replica("points")
    await asyncio.sleep(2)
    stack.kill_service("notify")
    await stack.restart_service("payments-2")
    await stack.restart_service("shipping")
    await stack.restart_service("notify-2")
    await stack.wait_ready([new_points])
    await stack.restart_service("notify")
    await publishing

    await eventually(lambda: _completed(stack, ids), timeout=240)
    elapsed = time.monotonic() - started
    print(f"\nreplica run: {len(ids)} orders completed in {elapsed:.0f} s with 2 kills + 1 stop + 1 added replica")
    await _assert_each_side_effect_once(stack, seen, orders, notify_kills=1)
    await _assert_events_in_order(seen, orders)
    for service in ("payments", "notify", "shipping"):
        assert not await fetch(stack.service_dsns[service], "SELECT 1 FROM parked"), f"{service} still has parked messages"


async def test_a_rebalance_in_the_middle_of_a_batch_repeats_no_mail_and_no_gateway_call(replicas, seen) -> None:
    stack = replicas
    orders = _mixed_orders(1_300_000, 60)
    ids = [_id(o) for o in orders]
    running = [stack.processes[n] for n in stack.replica_names("notify") if stack.processes[n].alive]
    before = [await rebalances(p.http_port) for p in running]

    await _publish(stack, orders)
    # A new replica joins while the running ones are busy with these orders' batches: partitions move mid-batch.
    await eventually(
        lambda: fetch(stack.service_dsns["notify"], "SELECT 1 FROM mail_log WHERE order_id = ANY($1::uuid[]) LIMIT 1", ids),
        timeout=120,
        interval=0.05,
    )
    joined = [stack.add_replica("notify"), stack.add_replica("payments")]
    await stack.wait_ready(joined)

    await eventually(lambda: _completed(stack, ids), timeout=240)
    after = [await rebalances(p.http_port) for p in running]
    assert all(sum(a.values()) > sum(b.values()) for a, b in zip(after, before)), "the join set off no rebalance"
    await _assert_each_side_effect_once(stack, seen, orders)
    await _assert_events_in_order(seen, orders)


def _golden(name: str, **changes) -> dict:
    return {**json.loads((GOLDEN / f"{name}.json").read_text()), **changes}


async def test_cash_collected_reaching_payments_before_the_order_is_kept_and_settled_once_the_order_arrives(replicas, seen) -> None:
    stack = replicas
    order_id, shop_id = str(uuid4()), "kyoto-tea"
    accepted = _golden(
        "OrderAccepted", event_id=str(uuid4()), order_id=order_id, shop_id=shop_id,
        external_order_no=f"RK-{order_id[:8]}", payment={"method": "cash_on_delivery"},
    )
    total = accepted["charges"]["total"]
    delivered = _golden(
        "ShipmentDelivered", event_id=str(uuid4()), order_id=order_id, shop_id=shop_id, shipment_id=str(uuid4()),
        cash_collected=total,
    )
    key = order_id.encode()
    await publish_raw(stack.bootstrap, topics.SHIPPING_EVENTS, json.dumps(delivered).encode(), key=key, headers=[("type", b"ShipmentDelivered")])
    parked = await eventually(
        lambda: fetch(stack.service_dsns["payments"], "SELECT waiting_for, reason FROM parked WHERE key = $1", key), timeout=60
    )
    assert parked[0]["waiting_for"] == order_id and "before its OrderAccepted" in parked[0]["reason"]
    assert not seen.on(topics.PAYMENTS_EVENTS, type="PaymentReceived", order_id=order_id)

    await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, json.dumps(accepted).encode(), key=key, headers=[("type", b"OrderAccepted")])

    [received] = await seen.wait_for(topics.PAYMENTS_EVENTS, type="PaymentReceived", order_id=order_id, timeout=60)
    assert (received.json()["amount"], received.json()["balance"], received.json()["source"]) == (total, 0, "cash_on_delivery")
    [payment] = await fetch(stack.service_dsns["payments"], "SELECT method, received_amount FROM payments WHERE order_id = $1::uuid", order_id)
    assert (payment["method"], payment["received_amount"]) == ("cash_on_delivery", total)
    assert not await fetch(stack.service_dsns["payments"], "SELECT 1 FROM parked WHERE key = $1", key)
    assert not seen.on("shipping.events.v1.dlq", **{"dlq.consumer_group": "ordermesh-payments"})


async def test_a_real_cash_on_delivery_order_whose_delivery_overtakes_its_acceptance_at_payments_completes(replicas, seen) -> None:
    stack = replicas
    [order] = _mixed_orders(1_400_001, 1)
    assert order.payment.method is PaymentMethod.CASH_ON_DELIVERY
    order_id = _id(order)
    # Payments is down while the order is accepted, shipped and delivered; when it comes back both topics are
    # waiting, and whichever it reads first, the order must complete.
    for name in stack.replica_names("payments"):
        stack.kill_service(name)
    await _publish(stack, [order])
    await seen.wait_for(topics.SHIPPING_EVENTS, type="ShipmentDelivered", order_id=order_id, timeout=120)
    for name in stack.replica_names("payments"):
        await stack.restart_service(name)
    await eventually(lambda: _completed(stack, [order_id]), timeout=120)
    assert len(seen.on(topics.PAYMENTS_EVENTS, type="PaymentReceived", order_id=order_id)) == 1
