"""End to end on the real broker: points honour order edits (provisional points follow the merchandise, the points
held follow the points used, confirmed points stay, an edit before the acceptance ends the same), staff bulk-confirm
with a result per order, the service expires old points on its own schedule, and bonus points go only to customers
who were members when they bought."""

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
from ordermesh_contracts import (
    BulkConfirmPoints,
    ExpirePoints,
    GrantPoints,
    LineDiff,
    OrderEdited,
    SetPointsSettings,
    order_id_for,
    topics,
)
from ordermesh_devstack.demo import demo_order
from ordermesh_ops.client import Connection, send_command
from support import eventually, fetch, publish_raw
from test_points_cancellation import (
    balance_adding_up,
    cancel,
    order_ledger,
    place,
    waiting_for_stock,
)

TOKYO = ZoneInfo("Asia/Tokyo")


def new_shop(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ops(stack) -> Connection:
    return Connection(bootstrap=stack.bootstrap, service_urls={}, token=stack.api_token)


async def command(stack, message) -> dict:
    reply = await send_command(ops(stack), topics.POINTS_COMMANDS, message)
    assert reply["type"] == "CommandAccepted", reply
    return reply


async def ledger_json(stack, shop: str, customer_id: str) -> list[dict]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(
            f"http://127.0.0.1:{stack.processes['points'].http_port}/api/points/ledger",
            params={"shop_id": shop, "customer_id": customer_id}, headers={"Authorization": f"Bearer {stack.api_token}"},
        )
    assert response.status_code == 200
    return response.json()["entries"]


def edit_of(order, order_id, *, edit_no: int = 1, quantity: int, points_used: int, occurred_at: datetime | None = None) -> OrderEdited:
    """The order's only line at a new quantity and new points used, as the orders service would announce it."""
    delivery = order.deliveries[0]
    line = delivery.lines[0]
    merchandise = line.unit_price * quantity
    charges = order.charges.model_copy(update={"points_used": points_used, "total": merchandise + order.charges.shipping_fee - points_used})
    return OrderEdited(
        order_id=order_id, shop_id=order.shop_id, edit_no=edit_no, external_order_no=order.external_order_no,
        customer=order.customer, currency="JPY", payment=order.payment,
        changes=[LineDiff(delivery_index=0, sku=line.sku, change="changed", previous_quantity=line.quantity, quantity=quantity,
                          unit_price=line.unit_price, previous_line_discount=0, line_discount=0)],
        deliveries=[delivery.model_copy(update={"lines": [line.model_copy(update={"quantity": quantity})]})],
        previous_charges=order.charges, charges=charges, merchandise_total=merchandise, paid=0, balance=0,
        adjust_stock=False, notify_customer=False, reason="customer phoned", edited_by="staff:e2e",
        **({"occurred_at": occurred_at} if occurred_at else {}),
    )


async def publish_edit(stack, edit: OrderEdited) -> None:
    await publish_raw(stack.bootstrap, topics.ORDERS_EVENTS, edit.model_dump_json().encode(), edit.kafka_key().encode())


async def known_customer_with(stack, recorder, shop: str, number: int, points: int) -> str:
    first = waiting_for_stock(number, shop)
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsAccrued", order_id=await place(stack, first), timeout=60)
    await command(stack, GrantPoints(shop_id=shop, issued_by="e2e", customer_id=first.customer.customer_id, points=points, reason="welcome"))
    return first.customer.customer_id


async def test_an_edit_moves_provisional_points_and_the_points_held_and_a_raise_beyond_the_balance_keeps_the_old_hold(stack, recorder):
    shop = new_shop("edt")
    customer = await known_customer_with(stack, recorder, shop, 990_001, 500)
    order = waiting_for_stock(990_501, shop, points_used=100)  # 3 units, same customer
    order_id = await place(stack, order)
    [accrued] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsAccrued", order_id=order_id, timeout=60)
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsRedeemed", order_id=order_id)
    earned = accrued.json()["points"]
    unit_price = order.deliveries[0].lines[0].unit_price
    lowered = unit_price * 1 // 100

    await publish_edit(stack, edit_of(order, order_id, quantity=1, points_used=300))
    [answer] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsRecomputed", order_id=order_id, edit_no=1, timeout=60)
    body = answer.json()
    assert (body["previous_provisional"], body["provisional"], body["previous_points_used"], body["points_used"]) == (earned, lowered, 100, 300)
    assert body["confirmed_unchanged"] is False and answer.key == f"{shop}:{customer}".encode()
    assert await order_ledger(stack, order_id) == [("accrued", earned), ("reserved", 100), ("reversed", earned - lowered), ("reserved", 200)]

    await publish_edit(stack, edit_of(order, order_id, edit_no=2, quantity=1, points_used=5_000))
    [failed] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsRedemptionFailed", order_id=order_id, timeout=60)
    [second] = recorder.on(topics.POINTS_EVENTS, type="PointsRecomputed", order_id=order_id, edit_no=2)
    assert (failed.json()["requested"], second.json()["points_used"]) == (5_000, 300)
    assert len(await order_ledger(stack, order_id)) == 4
    balance = await balance_adding_up(stack, shop, customer)
    assert (balance["available"], balance["reserved"]) == (200, 300)
    assert [(e["kind"], e["points"]) for e in await ledger_json(stack, shop, customer) if e["order_id"] == str(order_id)][-2:] == [
        ("reversed", earned - lowered), ("reserved", 200),
    ]


async def test_an_edit_of_confirmed_points_changes_only_the_points_used_and_an_edit_before_the_acceptance_ends_the_same(stack, recorder):
    shop = new_shop("edc")
    paid = demo_order(990_002, shop_id=shop)
    paid_id = await place(stack, paid)
    [confirmed] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsConfirmed", order_id=paid_id, timeout=90)
    await publish_edit(stack, edit_of(paid, paid_id, quantity=9, points_used=0))
    [answer] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsRecomputed", order_id=paid_id, timeout=60)
    assert answer.json()["confirmed_unchanged"] is True and answer.json()["provisional"] == 0
    points = confirmed.json()["points"]
    assert await order_ledger(stack, paid_id) == [("accrued", points), ("confirmed", points)]

    early = waiting_for_stock(990_003, shop)
    early_id = order_id_for(early.shop_id, early.channel.value, early.external_order_no)
    edit = edit_of(early, early_id, quantity=1, points_used=0, occurred_at=datetime.now(timezone.utc))
    await publish_edit(stack, edit)  # reaches points before the order exists
    await place(stack, early)
    [late_answer] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsRecomputed", order_id=early_id, timeout=90)
    earned = early.deliveries[0].lines[0].unit_price * 3 // 100
    edited = early.deliveries[0].lines[0].unit_price // 100
    assert (late_answer.json()["previous_provisional"], late_answer.json()["provisional"]) == (earned, edited)
    assert late_answer.json()["causation_id"] == str(edit.event_id)
    assert await order_ledger(stack, early_id) == [("accrued", earned), ("reversed", earned - edited)]
    [row] = await fetch(stack.service_dsns["points"], "SELECT status, points, edit_no, pending_edit FROM order_points WHERE order_id = $1", early_id)
    assert (row["status"], row["points"], row["edit_no"], row["pending_edit"]) == ("provisional", edited, 1, None)


async def test_staff_bulk_confirm_answers_per_order_paid_confirmed_and_unpaid_cancelled_or_already_confirmed_skipped(stack, recorder):
    shop = new_shop("blk")
    started = datetime.now(timezone.utc) - timedelta(minutes=1)
    await command(stack, SetPointsSettings(shop_id=shop, issued_by="e2e", confirm_on="manual"))
    paid, early_paid = demo_order(990_010, shop_id=shop), demo_order(990_011, shop_id=shop)
    unpaid, cancelled = waiting_for_stock(990_012, shop), waiting_for_stock(990_013, shop)
    ids = {name: await place(stack, order) for name, order in
           (("paid", paid), ("early_paid", early_paid), ("unpaid", unpaid), ("cancelled", cancelled))}
    for name in ("paid", "early_paid"):
        await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentCaptured", order_id=ids[name], timeout=90)
    for name in ("unpaid", "cancelled"):
        await recorder.wait_for(topics.POINTS_EVENTS, type="PointsAccrued", order_id=ids[name], timeout=60)
    await cancel(stack, cancelled, ids["cancelled"], restore_stock=False, cancel_payment=False, notify_customer=False)
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsReversed", order_id=ids["cancelled"], timeout=60)
    await eventually(lambda: _paid_rows(stack, ids["paid"], ids["early_paid"]), timeout=30)
    await command(stack, BulkConfirmPoints(shop_id=shop, issued_by="e2e", order_ids=[ids["early_paid"]]))

    by_period = await command(stack, BulkConfirmPoints(shop_id=shop, issued_by="e2e", paid_from=started))
    listed = await command(stack, BulkConfirmPoints(shop_id=shop, issued_by="e2e", order_ids=[ids["unpaid"], ids["cancelled"]]))

    results = {r["item"]: (r["ok"], r["reason"]) for r in by_period["results"] + listed["results"]}
    assert results == {
        str(ids["paid"]): (True, None),
        str(ids["early_paid"]): (False, "already confirmed"),
        str(ids["unpaid"]): (False, "not paid"),
        str(ids["cancelled"]): (False, "order cancelled"),
    }
    assert by_period["details"] == {"confirmed": 1, "skipped": 1}
    [row] = await fetch(stack.service_dsns["points"], "SELECT status FROM order_points WHERE order_id = $1", ids["paid"])
    assert row["status"] == "confirmed"
    assert [kind for kind, _ in await order_ledger(stack, ids["unpaid"])] == ["accrued"]


async def _paid_rows(stack, *order_ids) -> bool:
    rows = await fetch(stack.service_dsns["points"], "SELECT paid_at FROM order_points WHERE order_id = ANY($1::uuid[])", list(order_ids))
    return len(rows) == len(order_ids) and all(r["paid_at"] for r in rows)


async def test_bonus_points_go_only_to_customers_who_were_members_when_they_bought(stack, recorder):
    shop = new_shop("mbr")
    tomorrow = datetime.now(TOKYO).date() + timedelta(days=1)
    member, guest, joined_later = (waiting_for_stock(n, shop) for n in (990_020, 990_021, 990_022))
    guest = guest.model_copy(update={"customer": guest.customer.model_copy(update={"member_since": None})})
    joined_later = joined_later.model_copy(update={"customer": joined_later.customer.model_copy(update={"member_since": tomorrow})})
    earned = {}
    for name, order in (("member", member), ("guest", guest), ("joined_later", joined_later)):
        [accrued] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsAccrued", order_id=await place(stack, order), timeout=60)
        earned[name] = accrued.json()["points"]
    assert earned == {"member": member.deliveries[0].lines[0].unit_price * 3 // 100, "guest": 0, "joined_later": 0}
    for name, order in (("member", member), ("guest", guest), ("joined_later", joined_later)):
        balance = await balance_adding_up(stack, shop, order.customer.customer_id)
        assert balance["provisional"] == earned[name] and balance["available"] == 0
        assert [e["kind"] for e in await ledger_json(stack, shop, order.customer.customer_id)] == (["accrued"] if earned[name] else [])


async def test_the_service_expires_old_points_on_its_own_schedule_once_a_day_and_a_manual_run_adds_nothing(stack, recorder):
    shop = new_shop("exp")
    await command(stack, SetPointsSettings(shop_id=shop, issued_by="e2e", expiry_months=12))
    first = waiting_for_stock(990_030, shop)
    await recorder.wait_for(topics.POINTS_EVENTS, type="PointsAccrued", order_id=await place(stack, first), timeout=60)
    customer = first.customer.customer_id
    long_ago = datetime.now(timezone.utc) - timedelta(days=800)
    await command(stack, GrantPoints(shop_id=shop, issued_by="e2e", customer_id=customer, points=120, reason="old", occurred_at=long_ago))
    await command(stack, GrantPoints(shop_id=shop, issued_by="e2e", customer_id=customer, points=30, reason="recent"))

    points = stack.processes["points"]
    await asyncio.to_thread(points.stop)
    points.env = {**points.env, "ORDERMESH_POINTS_EXPIRY_INTERVAL_SECONDS": "1"}
    await stack.restart_service("points")

    [expired] = await recorder.wait_for(topics.POINTS_EVENTS, type="PointsExpired", shop_id=shop, timeout=60)
    today = datetime.now(TOKYO).date()
    assert (expired.json()["customer_id"], expired.json()["points"], expired.json()["as_of"]) == (customer, 120, today.isoformat())
    [run] = await eventually(lambda: fetch(stack.service_dsns["points"], "SELECT as_of, customers, points FROM expiry_runs WHERE shop_id = $1", shop))
    assert (run["as_of"], run["customers"], run["points"]) == (today, 1, 120)
    async with httpx.AsyncClient(timeout=5) as client:
        runs = await client.get(
            f"http://127.0.0.1:{points.http_port}/api/points/expiry-runs", params={"shop_id": shop},
            headers={"Authorization": f"Bearer {stack.api_token}"},
        )
    assert [(r["as_of"], r["points"]) for r in runs.json()["runs"]] == [(today.isoformat(), 120)]
    manual = await command(stack, ExpirePoints(shop_id=shop, issued_by="e2e", as_of=today))
    assert manual["details"] == {"customers": 0, "points": 0}
    assert [(e["kind"], e["points"]) for e in await ledger_json(stack, shop, customer) if e["kind"] == "expired"] == [("expired", 120)]
    balance = await balance_adding_up(stack, shop, customer)
    assert (balance["available"], balance["lifetime"]) == (30, 150)
