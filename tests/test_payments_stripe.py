"""End to end on the real broker: a shop whose card payments go to Stripe (localstripe, started with the local stack).
A card order authorizes, ships, captures and completes on Stripe; a declined card fails the authorization; an edit
that lowers the total captures only the new total (Stripe partial capture). The payments ledger, localstripe's own
PaymentIntents and the order agree; the sandbox gateway never sees these orders."""

import json
import uuid

import httpx

from ordermesh_contracts import (
    EditOrder,
    LineChange,
    OrderLine,
    Payment,
    SetPaymentSettings,
    ShopOrderSubmitted,
    order_id_for,
    topics,
)
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.localstripe import TEST_API_KEY
from ordermesh_ops.client import Connection, send_command
from support import eventually, fetch, publish_raw

SHOP = f"stripe-shop-{uuid.uuid4().hex[:6]}"
_configured: set[str] = set()


async def send(stack, topic: str, command) -> dict:
    return await send_command(Connection(stack.bootstrap, {}, stack.api_token), topic, command)


async def shop_on_stripe(stack) -> str:
    """The test shop, set to take card payments on Stripe (once per session)."""
    if SHOP not in _configured:
        reply = await send(stack, topics.PAYMENTS_COMMANDS, SetPaymentSettings(shop_id=SHOP, issued_by="staff:e2e", card_gateway="stripe"))
        assert reply["type"] == "CommandAccepted", reply
        assert reply["details"]["card_gateway"] == "stripe"
        _configured.add(SHOP)
    return SHOP


async def place(stack, order: ShopOrderSubmitted) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


def stripe_get(stack, path: str, **params) -> dict:
    response = httpx.get(f"{stack.stripe_api_base}{path}", params=params, auth=(TEST_API_KEY, ""), timeout=10)
    response.raise_for_status()
    return response.json()


def intents_of(stack, order_id: uuid.UUID) -> list[dict]:
    listed = stripe_get(stack, "/v1/payment_intents", limit=100)
    return [i for i in listed["data"] if i["metadata"].get("ordermesh_order_id") == str(order_id)]


def captured_at_stripe(intent: dict) -> int:
    """What the PaymentIntent's charge kept (localstripe books the released part of a partial capture as refunded)."""
    charge = intent["latest_charge"]
    return charge["amount"] - charge["amount_refunded"] if charge and charge["captured"] else 0


async def sandbox_authorizations(stack, order_id: uuid.UUID) -> list[dict]:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"http://127.0.0.1:{stack.processes['gateway'].http_port}/v1/authorizations", params={"order_id": str(order_id)}
        )
    return response.json()["authorizations"]


async def payment_and_ledger(stack, order_id: uuid.UUID) -> tuple[dict, list[tuple]]:
    dsn = stack.service_dsns["payments"]
    [payment] = await fetch(dsn, "SELECT * FROM payments WHERE order_id = $1", order_id)
    calls = await fetch(
        dsn, "SELECT operation, status, amount, reference FROM gateway_calls WHERE order_id = $1 ORDER BY requested_at", order_id
    )
    return dict(payment), [tuple(c) for c in calls]


def payments_dead_letters(recorder) -> list:
    return recorder.dead_letters_since_test_start("payments")


async def test_a_card_order_of_a_shop_on_stripe_authorizes_ships_captures_and_completes_on_stripe(stack, recorder):
    order = demo_order(960_001, shop_id=await shop_on_stripe(stack), card_token="pm_card_visa")
    total = order.charges.total
    order_id = await place(stack, order)

    [authorized] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id)
    [captured] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=order_id, timeout=90)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)

    intent_id = authorized.json()["authorization_id"]
    assert intent_id.startswith("pi_") and authorized.json()["amount"] == total
    assert (captured.json()["amount"], captured.json()["capture_id"].startswith("ch_")) == (total, True)
    payment, ledger = await payment_and_ledger(stack, order_id)
    assert (payment["gateway"], payment["status"], payment["captured_amount"], payment["capture_id"]) == (
        "stripe", "captured", total, captured.json()["capture_id"]
    )
    assert ledger == [
        ("authorize", "succeeded", total, intent_id), ("capture", "succeeded", total, captured.json()["capture_id"])
    ]
    [intent] = intents_of(stack, order_id)
    assert (intent["id"], intent["status"], intent["capture_method"], intent["amount"], intent["currency"]) == (
        intent_id, "succeeded", "manual", total, "jpy"
    )
    assert (intent["latest_charge"]["id"], captured_at_stripe(intent)) == (captured.json()["capture_id"], total)
    assert await sandbox_authorizations(stack, order_id) == []
    [row] = await fetch(stack.service_dsns["orders"], "SELECT stage FROM orders WHERE order_id = $1", order_id)
    assert row["stage"] == "completed"
    assert payments_dead_letters(recorder) == []


async def test_a_card_stripe_declines_is_an_authorization_failure_and_the_order_waits_for_payment(stack, recorder):
    order = demo_order(960_002, shop_id=await shop_on_stripe(stack), card_token="pm_card_chargeCustomerFail")
    order_id = await place(stack, order)

    [failed] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorizationFailed", order_id=order_id)

    assert failed.json()["reason"] == "card_declined"
    payment, ledger = await payment_and_ledger(stack, order_id)
    assert (payment["gateway"], payment["status"]) == ("stripe", "authorization_failed")
    assert [(op, status) for op, status, _, _ in ledger] == [("authorize", "failed")]
    assert all(intent["status"] != "requires_capture" for intent in intents_of(stack, order_id))

    async def flagged():
        [row] = await fetch(stack.service_dsns["orders"], "SELECT stage, flags FROM orders WHERE order_id = $1", order_id)
        return row if json.loads(row["flags"]).get("card_authorization") == "error" else None

    row = await eventually(flagged, timeout=30)
    assert row["stage"] == "awaiting_payment"
    assert recorder.on(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id) == []


async def test_an_edit_lowering_the_total_captures_only_the_new_total_on_stripe(stack, recorder):
    shop = await shop_on_stripe(stack)
    kept, dropped = f"STRIPE-A-{uuid.uuid4().hex[:6]}", f"STRIPE-B-{uuid.uuid4().hex[:6]}"
    await stack.set_stock({kept: 1, dropped: 0})
    base = demo_order(960_003, shop_id=shop, card_token="pm_card_visa")
    lines = [
        OrderLine(sku=kept, name="煎茶", unit_price=3300, quantity=1, tax_rate_percent=8),
        OrderLine(sku=dropped, name="抹茶", unit_price=2160, quantity=1, tax_rate_percent=8),
    ]
    order = base.model_copy(update={
        "deliveries": [base.deliveries[0].model_copy(update={"lines": lines})],
        "charges": base.charges.model_copy(update={"shipping_fee": 550, "total": 3300 + 2160 + 550}),
        "payment": Payment(method="card", card_token="pm_card_visa"),
    })
    order_id = await place(stack, order)
    [authorized] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id)
    await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=order_id, timeout=60)

    reply = await send(stack, topics.ORDERS_COMMANDS, EditOrder(
        shop_id=shop, issued_by="staff:e2e", order_id=order_id, lines=[LineChange(sku=dropped, quantity=0)],
        adjust_stock=True, reason="out of stock, customer agreed",
    ))
    assert reply["type"] == "CommandAccepted", reply
    new_total = 3300 + 550

    [changed] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAmountChanged", order_id=order_id, timeout=60)
    assert (changed.json()["outcome"], changed.json()["amount"]) == ("authorization_reduced", new_total)
    [captured] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=order_id, timeout=120)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)

    assert captured.json()["amount"] == new_total
    payment, ledger = await payment_and_ledger(stack, order_id)
    assert (payment["gateway"], payment["authorized_amount"], payment["captured_amount"]) == ("stripe", order.charges.total, new_total)
    assert [(op, status, amount) for op, status, amount, _ in ledger] == [
        ("authorize", "succeeded", order.charges.total), ("capture", "succeeded", new_total)
    ]
    [intent] = intents_of(stack, order_id)
    assert (intent["id"], intent["status"], intent["amount"], captured_at_stripe(intent)) == (
        authorized.json()["authorization_id"], "succeeded", order.charges.total, new_total
    )
    assert await sandbox_authorizations(stack, order_id) == []
    assert payments_dead_letters(recorder) == []
