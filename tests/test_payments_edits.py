"""End to end on the real broker: payments honours OrderEdited with exactly one answer per edit — a card re-authorized
for a higher total (the old authorization voided), a refused re-authorization answered as a failure that staff can
retry, and an unpaid prepaid request re-issued for the new total."""

import json
import time
import uuid
from pathlib import Path

import httpx

from ordermesh_contracts import (
    OrderEdited,
    Payment,
    PaymentMethod,
    RetryAmountChange,
    ShopOrderSubmitted,
    order_id_for,
    topics,
)
from ordermesh_devstack.demo import demo_order
from support import eventually, fetch, publish_raw

GOLDEN = Path(__file__).parents[1] / "contracts" / "tests" / "golden"


def stalled(number: int, **changes) -> ShopOrderSubmitted:
    """A demo order for a sku the warehouse never stocked: it waits for allocation and never ships."""
    base = demo_order(number).model_copy(update=changes)
    line = base.deliveries[0].lines[0].model_copy(update={"sku": f"NONE-{uuid.uuid4().hex[:8]}"})
    delivery = base.deliveries[0].model_copy(update={"lines": [line]})
    total = line.unit_price * line.quantity + base.charges.shipping_fee
    return base.model_copy(update={"deliveries": [delivery], "charges": base.charges.model_copy(update={"total": total})})


async def submit(stack, order: ShopOrderSubmitted) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def edit(stack, order: ShopOrderSubmitted, order_id: uuid.UUID, total: int, edit_no: int = 1) -> OrderEdited:
    """Publishes OrderEdited as the orders service would after an edit that changes the total to `total`."""
    raw = json.loads((GOLDEN / "OrderEdited.json").read_text(encoding="utf-8"))
    raw.update(
        event_id=str(uuid.uuid4()), order_id=str(order_id), shop_id=order.shop_id, edit_no=edit_no,
        external_order_no=order.external_order_no, customer=order.customer.model_dump(mode="json"),
        payment=order.payment.model_dump(mode="json"), deliveries=[d.model_dump(mode="json") for d in order.deliveries],
        previous_charges=order.charges.model_dump(mode="json"),
        charges={**order.charges.model_dump(mode="json"), "total": total},
    )
    message = OrderEdited.model_validate(raw)
    await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, message.model_dump_json().encode(), str(order_id).encode())
    return message


async def gateway_authorizations(stack, order_id: uuid.UUID) -> list[dict]:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"http://127.0.0.1:{stack.processes['gateway'].http_port}/v1/authorizations", params={"order_id": str(order_id)}
        )
    return response.json()["authorizations"]


async def ledger(stack, order_id: uuid.UUID) -> list[tuple]:
    rows = await fetch(
        stack.service_dsns["payments"],
        "SELECT operation, status, amount FROM gateway_calls WHERE order_id = $1 ORDER BY requested_at", order_id,
    )
    return [tuple(row) for row in rows]


def answers(recorder, order_id: uuid.UUID) -> list[dict]:
    return [
        m.json() for m in recorder.on(topics.PAYMENTS_EVENTS, order_id=order_id)
        if m.json()["type"] in ("PaymentAmountChanged", "PaymentAmountChangeFailed")
    ]


def payments_dead_letters(recorder) -> list:
    return recorder.dead_letters_since_test_start("payments")


async def test_a_card_order_edited_up_is_reauthorized_and_the_old_authorization_voided(stack, recorder):
    order = stalled(972_001)
    order_id = await submit(stack, order)
    [authorized] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id, timeout=90)
    total, new_total = order.charges.total, order.charges.total + 1_980

    started = time.monotonic()
    edited = await edit(stack, order, order_id, new_total)
    [changed] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAmountChanged", order_id=order_id, timeout=60)
    print(f"\nOrderEdited → PaymentAmountChanged(reauthorized) in {time.monotonic() - started:.2f} s")

    body = changed.json()
    assert (body["outcome"], body["previous_amount"], body["amount"], body["edit_no"], body["causation_id"]) == (
        "reauthorized", total, new_total, 1, str(edited.event_id)
    )
    assert await ledger(stack, order_id) == [
        ("authorize", "succeeded", total), ("reauthorize", "succeeded", new_total), ("void", "succeeded", total)
    ]
    at_gateway = {a["authorization_id"]: (a["amount"], a["status"]) for a in await gateway_authorizations(stack, order_id)}
    assert at_gateway.pop(authorized.json()["authorization_id"]) == (total, "voided")
    assert list(at_gateway.values()) == [(new_total, "authorized")]
    [payment] = await fetch(
        stack.service_dsns["payments"], "SELECT amount, authorized_amount, edit_no FROM payments WHERE order_id = $1", order_id
    )
    assert tuple(payment) == (new_total, new_total, 1)
    assert len(answers(recorder, order_id)) == 1
    assert payments_dead_letters(recorder) == []


async def test_a_refused_reauthorization_keeps_the_old_one_and_staff_retry_is_answered(stack, recorder):
    order = stalled(972_002)
    order_id = await submit(stack, order)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=order_id, timeout=90)
    await edit(stack, order, order_id, 50_402)
    [failed] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAmountChangeFailed", order_id=order_id, timeout=60)
    assert (failed.json()["requested_amount"], failed.json()["reason"]) == (
        50_402, "re-authorization refused by the gateway: amount_declined"
    )
    [payment] = await fetch(stack.service_dsns["payments"], "SELECT amount, status FROM payments WHERE order_id = $1", order_id)
    assert tuple(payment) == (order.charges.total, "authorized")
    [at_gateway] = [a for a in await gateway_authorizations(stack, order_id)]
    assert (at_gateway["amount"], at_gateway["status"]) == (order.charges.total, "authorized")

    command = RetryAmountChange(shop_id=order.shop_id, issued_by="e2e", order_id=order_id, reason="customer called back")
    await publish_raw(stack.bootstrap, topics.PAYMENTS_COMMANDS, command.model_dump_json().encode(), str(order_id).encode())
    [reply] = await recorder.wait_for(topics.OPS_REPLIES, command_id=command.event_id, timeout=60)
    assert (reply.json()["type"], reply.json()["results"][0]["ok"]) == ("CommandAccepted", False)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, 2, type="PaymentAmountChangeFailed", order_id=order_id, timeout=30)

    other = stalled(972_003)
    other_id = await submit(stack, other)
    await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=other_id, timeout=90)
    refused = RetryAmountChange(shop_id=other.shop_id, issued_by="e2e", order_id=other_id, reason="just in case")
    await publish_raw(stack.bootstrap, topics.PAYMENTS_COMMANDS, refused.model_dump_json().encode(), str(other_id).encode())
    [rejection] = await recorder.wait_for(topics.OPS_REPLIES, command_id=refused.event_id, timeout=60)
    assert rejection.json()["type"] == "CommandRejected"
    assert rejection.json()["reasons"] == [f"order {other_id} has no failed amount change to retry"]
    assert payments_dead_letters(recorder) == []


async def test_an_unpaid_bank_transfer_order_edited_down_is_asked_for_the_new_total_with_the_same_reference(stack, recorder):
    order = stalled(972_004, payment=Payment(method=PaymentMethod.BANK_TRANSFER))
    order_id = await submit(stack, order)
    [requested] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentRequested", order_id=order_id, timeout=90)
    await edit(stack, order, order_id, order.charges.total - 500)
    [changed] = await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAmountChanged", order_id=order_id, timeout=60)
    assert (changed.json()["outcome"], changed.json()["amount"]) == ("request_updated", order.charges.total - 500)
    [_, again] = await recorder.wait_for(topics.PAYMENTS_EVENTS, 2, type="PaymentRequested", order_id=order_id, timeout=30)
    assert (again.json()["reference"], again.json()["amount"]) == (requested.json()["reference"], order.charges.total - 500)
    await eventually(
        lambda: fetch(
            stack.service_dsns["payments"], "SELECT 1 FROM payments WHERE order_id = $1 AND amount = $2", order_id,
            order.charges.total - 500,
        ),
        timeout=30,
    )
    assert payments_dead_letters(recorder) == []
