"""End to end on the real broker: points accrue and confirm on a card order, staff grant and deduct over Kafka,
and an order using more points than the customer has is told so — the ledger always adds up to the balance."""

import uuid

import httpx

from ordermesh_contracts import Charges, DeductPoints, GrantPoints, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_ops.client import Connection, send_command
from support import fetch, publish_raw

SIGNED = {"accrued": 1, "granted": 1, "reversed": -1, "deducted": -1, "expired": -1, "debt_settled": -1}


def connection(stack) -> Connection:
    urls = {name: f"http://127.0.0.1:{process.http_port}" for name, process in stack.processes.items() if process.http_port}
    return Connection(bootstrap=stack.bootstrap, service_urls=urls, token=stack.api_token)


async def points_balance(stack, shop_id: str, customer_id: str) -> dict:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(
            f"http://127.0.0.1:{stack.processes['points'].http_port}/api/points/balance",
            params={"shop_id": shop_id, "customer_id": customer_id},
            headers={"Authorization": f"Bearer {stack.api_token}"},
        )
    assert response.status_code == 200
    return response.json()


async def assert_ledger_adds_up(stack, shop_id: str, customer_id: str) -> dict:
    rows = await fetch(stack.service_dsns["points"], "SELECT kind, points FROM ledger WHERE shop_id = $1 AND customer_id = $2", shop_id, customer_id)
    balance = await points_balance(stack, shop_id, customer_id)
    ledger_sum = sum(SIGNED.get(row["kind"], 0) * row["points"] for row in rows)
    assert ledger_sum == balance["available"] + balance["provisional"] + balance["reserved"] + balance["used"]
    return balance


def new_shop() -> str:
    return f"pts-{uuid.uuid4().hex[:8]}"


async def place(stack, order) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def test_a_member_card_order_accrues_points_that_confirm_on_capture_and_the_ledger_equals_the_balance(stack, recorder):
    shop = new_shop()
    order = demo_order(970_001, shop_id=shop)
    order_id = await place(stack, order)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)
    expected = sum(l.unit_price * l.quantity for d in order.deliveries for l in d.lines) // 100
    [confirmed] = recorder.on(topics.POINTS_EVENTS, type="PointsConfirmed", order_id=order_id)
    assert confirmed.json()["points"] == expected and confirmed.key == f"{shop}:{order.customer.customer_id}".encode()
    balance = await assert_ledger_adds_up(stack, shop, order.customer.customer_id)
    assert (balance["available"], balance["provisional"], balance["lifetime"]) == (expected, 0, expected)


async def test_staff_grant_and_deduct_points_over_kafka_and_a_bad_grant_is_rejected_with_every_reason(stack, recorder):
    shop = new_shop()
    order = demo_order(970_002, shop_id=shop)
    order_id = await place(stack, order)
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsAccrued", order_id=order_id, timeout=60)
    customer = order.customer.customer_id
    ops = connection(stack)

    granted = await send_command(
        ops, topics.POINTS_COMMANDS, GrantPoints(shop_id=shop, issued_by="e2e", customer_id=customer, points=500, reason="registered after buying")
    )
    assert granted["type"] == "CommandAccepted" and granted["service"] == "points"
    deducted = await send_command(
        ops, topics.POINTS_COMMANDS, DeductPoints(shop_id=shop, issued_by="e2e", customer_id=customer, points=120, reason="correction")
    )
    assert deducted["type"] == "CommandAccepted"
    rejected = await send_command(
        ops, topics.POINTS_COMMANDS, GrantPoints(shop_id=shop, issued_by="e2e", customer_id="NOBODY", points=-3)
    )
    assert rejected["type"] == "CommandRejected"
    assert rejected["reasons"] == [
        "points must be a positive number, not -3",
        "unknown customer: no orders or points of this customer in this shop",
        "a reason is required",
    ]
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsDeducted", customer_id=customer, shop_id=shop)
    balance = await assert_ledger_adds_up(stack, shop, customer)
    assert balance["available"] >= 380 and balance["lifetime"] >= 500


async def test_an_order_using_more_points_than_available_gets_redemption_failed_and_one_within_the_balance_holds_them(stack, recorder):
    shop = new_shop()
    first = demo_order(970_003, shop_id=shop)
    # the first order's points confirm when it is captured, a second or so later: waited for, so the balance is known
    confirmed = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsConfirmed", order_id=await place(stack, first), timeout=90)
    earned = confirmed[0].json()["points"]
    customer = first.customer.customer_id
    reply = await send_command(
        connection(stack), topics.POINTS_COMMANDS,
        GrantPoints(shop_id=shop, issued_by="e2e", customer_id=customer, points=300, reason="welcome"),
    )
    assert reply["type"] == "CommandAccepted"

    def using(number: int, points: int):
        order = demo_order(number, shop_id=shop)
        charges = order.charges
        return order.model_copy(
            update={"charges": Charges(shipping_fee=charges.shipping_fee, points_used=points, total=charges.total - points)}
        )

    too_many = using(970_503, 1000)  # same customer (number % 500)
    failed = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsRedemptionFailed", order_id=await place(stack, too_many), timeout=60)
    assert (failed[0].json()["requested"], failed[0].json()["available"]) == (1000, 300 + earned)
    within = using(971_003, 200)
    redeemed = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsRedeemed", order_id=await place(stack, within), timeout=60)
    assert redeemed[0].json()["points"] == 200
    balance = await assert_ledger_adds_up(stack, shop, customer)
    assert balance["available"] + balance["reserved"] + balance["used"] >= 300 + earned and balance["reserved"] + balance["used"] == 200
