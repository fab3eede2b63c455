"""A card order's gateway calls against redelivery and concurrency, on a real PostgreSQL and the sandbox gateway over
HTTP: an answer lost after the intent committed is asked for again under the same key, a message whose result was
saved calls nothing, concurrent deliveries authorize an order once, and a payment changed or an order cancelled while
a call was being decided is decided again."""

import asyncio
import json
from pathlib import Path
from uuid import uuid4

import pytest
from ordermesh_contracts import OrderAccepted, OrderCancelled, ShipmentShipped, topics
from ordermesh_payments import store
from ordermesh_payments.adapters.credit import SandboxCreditProvider
from ordermesh_payments.adapters.gateway import GatewayResult, Gateways, SandboxGateway
from ordermesh_payments.handlers import PaymentHandlers
from ordermesh_payments.handlers_deferred import DeferredPayments
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext, TransientError

GOLDEN = Path(__file__).resolve().parents[3] / "contracts" / "tests" / "golden"


class AnswerLostOnce:
    """The sandbox gateway, except that the first answer to each operation is lost on its way back (after the
    gateway acted on it); remembers the idempotency keys it was asked with."""

    def __init__(self, gateway: SandboxGateway) -> None:
        self._gateway = gateway
        self.keys: list[tuple[str, str]] = []

    async def _once(self, operation: str, key: str, call) -> GatewayResult:
        result = await call
        self.keys.append((operation, key))
        if [op for op, _ in self.keys].count(operation) == 1:
            raise TransientError(f"gateway timed out on {operation}")
        return result

    async def authorize(self, **request) -> GatewayResult:
        return await self._once("authorize", request["idempotency_key"], self._gateway.authorize(**request))

    async def capture(self, **request) -> GatewayResult:
        return await self._once("capture", request["idempotency_key"], self._gateway.capture(**request))


def golden(name: str, **changes) -> dict:
    return {**json.loads((GOLDEN / f"{name}.json").read_text("utf-8")), "event_id": str(uuid4()), **changes}


async def deliver(pool, handler, message, topic: str) -> str:
    """Handles the message as the consumer does, retrying transient failures; returns processed or duplicate."""
    for _ in range(20):
        try:
            await handler(message, MessageContext(pool, message.event_id, topic, log=None))
        except DuplicateMessage:
            return "duplicate"
        except TransientError:
            continue
        return "processed"
    raise AssertionError("still failing after 20 attempts")


async def authorizations_at_sandbox(sandbox, order: OrderAccepted) -> list[dict]:
    return (await sandbox.get("/v1/authorizations", params={"order_id": str(order.order_id)})).json()["authorizations"]


async def published(pool) -> list[str]:
    return [row["type"] for row in await pool.fetch("SELECT headers->0->>1 AS type FROM outbox ORDER BY id")]


@pytest.fixture
def lossy(sandbox_http) -> AnswerLostOnce:
    return AnswerLostOnce(SandboxGateway(sandbox_http))


def handlers_on(gateway, http) -> PaymentHandlers:
    return PaymentHandlers(Gateways({"sandbox": gateway}), DeferredPayments(SandboxCreditProvider(http)))


async def test_an_answer_lost_after_the_intent_is_asked_for_again_under_the_same_key_and_recorded_once(pool, sandbox, lossy, sandbox_http) -> None:
    payments = handlers_on(lossy, sandbox_http)
    order = OrderAccepted.model_validate(golden("OrderAccepted", order_id=str(uuid4())))
    shipped = ShipmentShipped.model_validate(golden("ShipmentShipped", order_id=str(order.order_id), shop_id=order.shop_id))

    assert await deliver(pool, payments.on_order_accepted, order, topics.ORDERS_EVENTS) == "processed"
    assert await deliver(pool, payments.on_shipment_shipped, shipped, topics.SHIPPING_EVENTS) == "processed"

    (authorize_key, retried_authorize), (capture_key, retried_capture) = lossy.keys[:2], lossy.keys[2:]
    assert authorize_key == retried_authorize and capture_key == retried_capture
    assert len(await authorizations_at_sandbox(sandbox, order)) == 1
    calls = await pool.fetch("SELECT idempotency_key, operation, status FROM gateway_calls ORDER BY requested_at")
    assert [tuple(call) for call in calls] == [(authorize_key[1], "authorize", "succeeded"), (capture_key[1], "capture", "succeeded")]
    payment = await pool.fetchrow("SELECT status, captured_amount FROM payments WHERE order_id = $1", order.order_id)
    assert (payment["status"], payment["captured_amount"]) == ("captured", order.charges.total)
    assert await published(pool) == ["PaymentAuthorized", "PaymentCaptured"]


async def test_a_message_whose_result_was_saved_is_a_duplicate_and_calls_no_gateway(pool, lossy, sandbox_http) -> None:
    payments = handlers_on(lossy, sandbox_http)
    order = OrderAccepted.model_validate(golden("OrderAccepted", order_id=str(uuid4())))
    shipped = ShipmentShipped.model_validate(golden("ShipmentShipped", order_id=str(order.order_id), shop_id=order.shop_id))
    await deliver(pool, payments.on_order_accepted, order, topics.ORDERS_EVENTS)
    await deliver(pool, payments.on_shipment_shipped, shipped, topics.SHIPPING_EVENTS)
    asked = len(lossy.keys)

    assert await deliver(pool, payments.on_order_accepted, order, topics.ORDERS_EVENTS) == "duplicate"
    assert await deliver(pool, payments.on_shipment_shipped, shipped, topics.SHIPPING_EVENTS) == "duplicate"

    assert len(lossy.keys) == asked
    assert await published(pool) == ["PaymentAuthorized", "PaymentCaptured"]


async def test_an_order_delivered_concurrently_twice_and_under_a_second_event_id_is_authorized_once(pool, sandbox, sandbox_http) -> None:
    payments = handlers_on(SandboxGateway(sandbox_http), sandbox_http)
    order = OrderAccepted.model_validate(golden("OrderAccepted", order_id=str(uuid4())))
    again = order.model_copy(update={"event_id": uuid4()})

    outcomes = await asyncio.gather(*(
        deliver(pool, payments.on_order_accepted, message, topics.ORDERS_EVENTS) for message in (order, order, again, again)
    ))

    assert sorted(outcomes) == ["duplicate", "duplicate", "processed", "processed"]
    assert len(await authorizations_at_sandbox(sandbox, order)) == 1
    assert await pool.fetchval("SELECT count(*) FROM gateway_calls WHERE order_id = $1", order.order_id) == 1
    assert await published(pool) == ["PaymentAuthorized"]


async def blocked_on_a_lock(pool) -> None:
    """Returns once some statement waits for a lock (a row, or a key being inserted) another transaction holds."""
    for _ in range(200):
        if await pool.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("nothing waited for a lock")


async def test_a_capture_decided_on_a_payment_cancelled_meanwhile_is_decided_again_and_captures_nothing(pool, sandbox, sandbox_http) -> None:
    payments = handlers_on(SandboxGateway(sandbox_http), sandbox_http)
    order = OrderAccepted.model_validate(golden("OrderAccepted", order_id=str(uuid4())))
    shipped = ShipmentShipped.model_validate(golden("ShipmentShipped", order_id=str(order.order_id), shop_id=order.shop_id))
    await deliver(pool, payments.on_order_accepted, order, topics.ORDERS_EVENTS)

    async with pool.acquire() as conn, conn.transaction():
        await store.record_cancellation(
            conn, order_id=order.order_id, shop_id=order.shop_id, cancel_payment=False, reason="by phone", cancelled_by="staff:sato"
        )
        capturing = asyncio.create_task(deliver(pool, payments.on_shipment_shipped, shipped, topics.SHIPPING_EVENTS))
        await blocked_on_a_lock(pool)  # the capture's intent waits for the cancellation's lock on the payment row
    assert await capturing == "processed"

    calls = await pool.fetch("SELECT operation FROM gateway_calls WHERE order_id = $1", order.order_id)
    assert [call["operation"] for call in calls] == ["authorize"]
    assert (await pool.fetchval("SELECT status FROM payments WHERE order_id = $1", order.order_id)) == "authorized"
    assert await published(pool) == ["PaymentAuthorized"]


async def test_an_order_cancelled_while_its_authorization_is_decided_is_never_authorized(pool, sandbox, sandbox_http) -> None:
    payments = handlers_on(SandboxGateway(sandbox_http), sandbox_http)
    order = OrderAccepted.model_validate(golden("OrderAccepted", order_id=str(uuid4())))

    async with pool.acquire() as conn, conn.transaction():  # the cancellation's intent, up to its commit
        await store.bar_opening(conn, order.order_id)
        assert await store.lock_payment(conn, order.order_id) is None
        await store.record_cancellation(
            conn, order_id=order.order_id, shop_id=order.shop_id, cancel_payment=True, reason="by phone", cancelled_by="staff:sato"
        )
        accepting = asyncio.create_task(deliver(pool, payments.on_order_accepted, order, topics.ORDERS_EVENTS))
        await blocked_on_a_lock(pool)  # the authorization's intent waits for the cancellation to commit
    assert await accepting == "processed"

    assert await authorizations_at_sandbox(sandbox, order) == []
    assert await pool.fetchval("SELECT count(*) FROM gateway_calls WHERE order_id = $1", order.order_id) == 0
    assert (await pool.fetchval("SELECT status FROM payments WHERE order_id = $1", order.order_id)) == "cancelled"


async def test_an_order_cancelled_while_its_authorization_intent_commits_finds_the_authorization_in_flight(pool, sandbox, sandbox_http) -> None:
    payments = handlers_on(SandboxGateway(sandbox_http), sandbox_http)
    order = OrderAccepted.model_validate(golden("OrderAccepted", order_id=str(uuid4())))
    cancelled = OrderCancelled.model_validate(golden("OrderCancelled", order_id=str(order.order_id), shop_id=order.shop_id))
    payment = dict(
        order_id=order.order_id, shop_id=order.shop_id, method="card", currency=order.currency, amount=order.charges.total,
        customer_id=order.customer.customer_id, card_token="tok_visa", correlation_id=order.correlation_id, traceparent=None,
    )

    async with pool.acquire() as conn, conn.transaction():  # the authorization's intent, up to its commit
        assert await store.save_opening_intent(
            conn, payment, existed=False, status="authorizing", operation="authorize", key="key-1", amount=order.charges.total,
            gateway="sandbox",
        )
        cancelling = asyncio.create_task(deliver(pool, payments.on_order_cancelled, cancelled, topics.ORDERS_EVENTS))
        await blocked_on_a_lock(pool)  # the cancellation waits for the intent to commit before it reads the payment
    assert await cancelling == "processed"

    row = await pool.fetchrow("SELECT status, cancelled_at FROM payments WHERE order_id = $1", order.order_id)
    assert row["status"] == "authorizing" and row["cancelled_at"] is not None
    assert await published(pool) == ["PaymentCancellationFailed"]  # in flight at the gateway: handed to staff
