"""Shipping's edit handling and shop settings on a real PostgreSQL: an edit before allocation is remembered (a repeat
changes nothing), stock follows an edit after it, and shop settings left out keep their value."""

import json
from datetime import date, datetime, time, timezone
from pathlib import Path
from uuid import uuid4

from ordermesh_contracts import (
    LineDiff,
    OrderAccepted,
    OrderEdited,
    OrderLine,
    OrderProgressed,
    SetShopShipping,
    Shipper,
    Stage,
    topics,
)
from ordermesh_servicekit.consuming import MessageContext
from ordermesh_shipping import store, store_stock
from ordermesh_shipping.commands import ShippingCommands
from ordermesh_shipping.handlers import ShippingHandlers

GOLDEN = Path(__file__).resolve().parents[3] / "contracts" / "tests" / "golden"


class FakeWarehouse:
    """Takes every request."""

    async def request_shipment(self, request) -> str:
        return f"wr_{request.shipment_id[:8]}"

    async def cancel_shipment(self, request_id: str) -> None:
        return None


def ctx(pool, message) -> MessageContext:
    return MessageContext(pool, message.event_id, "test", log=None)


def order(lines: dict[str, int]) -> OrderAccepted:
    golden = OrderAccepted.model_validate(json.loads((GOLDEN / "OrderAccepted.json").read_text("utf-8")))
    group = golden.deliveries[0].model_copy(update={
        "carrier": "yamato",
        "lines": [OrderLine(sku=sku, name=f"品 {sku}", unit_price=1000, quantity=qty, tax_rate_percent=10) for sku, qty in lines.items()],
    })
    return golden.model_copy(update={"event_id": uuid4(), "order_id": uuid4(), "deliveries": [group], "occurred_at": datetime.now(timezone.utc)})


def progressed(accepted: OrderAccepted, stage: Stage) -> OrderProgressed:
    return OrderProgressed(
        order_id=accepted.order_id, shop_id=accepted.shop_id, from_stage=Stage.AWAITING_PAYMENT, to_stage=stage,
        correlation_id=accepted.correlation_id,
    )


async def published(pool, **match) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.SHIPPING_EVENTS)
    events = [json.loads(row["payload"]) for row in rows]
    return [e for e in events if all(str(e.get(k)) == str(v) for k, v in match.items())]


def edited(accepted, lines: dict[str, int], *, adjust_stock: bool = True) -> OrderEdited:
    template = accepted.deliveries[0].lines[0]
    new_lines = [template.model_copy(update={"sku": sku, "quantity": qty}) for sku, qty in lines.items()]
    return OrderEdited(
        order_id=accepted.order_id, shop_id=accepted.shop_id, edit_no=1, external_order_no=accepted.external_order_no,
        customer=accepted.customer, currency=accepted.currency, payment=accepted.payment,
        changes=[LineDiff(delivery_index=0, sku=sku, change="changed", previous_quantity=0, quantity=qty, unit_price=1000,
                          previous_line_discount=0, line_discount=0) for sku, qty in lines.items()],
        deliveries=[accepted.deliveries[0].model_copy(update={"lines": new_lines})], previous_charges=accepted.charges,
        charges=accepted.charges, merchandise_total=accepted.merchandise_total, paid=0, balance=0,
        adjust_stock=adjust_stock, notify_customer=False, reason="test", edited_by="staff:test",
        correlation_id=accepted.correlation_id,
    )


async def test_an_edit_before_allocation_is_remembered_and_allocation_follows_the_new_lines(pool):
    handlers = ShippingHandlers(FakeWarehouse())
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("A", "main", 10), ("B", "main", 10)])
    accepted = order({"A": 2})
    await handlers.on_order_accepted(accepted, ctx(pool, accepted))
    edit = edited(accepted, {"A": 1, "B": 3})
    await handlers.on_order_edited(edit, ctx(pool, edit))
    [answer] = await published(pool, type="ShippingEditApplied")
    assert (answer["allocation"], answer["released"], answer["allocated"], answer["shipments_reissued"]) == ("none", [], [], 0)

    step = progressed(accepted, Stage.AWAITING_ALLOCATION)
    await handlers.on_order_progressed(step, ctx(pool, step))
    async with pool.acquire() as conn:
        assert await store_stock.allocated_to(conn, accepted.order_id) == {"A": 1, "B": 3}
    [allocated] = await published(pool, type="StockAllocated")
    assert allocated["allocation"] == "full"

    await handlers.on_order_edited(edit, ctx(pool, edit))
    assert len(await published(pool, type="ShippingEditApplied")) == 1


async def test_an_edit_after_allocation_releases_and_tops_up_stock(pool):
    handlers = ShippingHandlers(FakeWarehouse())
    async with pool.acquire() as conn:
        await store_stock.set_stock(conn, [("A", "main", 10), ("B", "main", 1)])
    accepted = order({"A": 4})
    await handlers.on_order_accepted(accepted, ctx(pool, accepted))
    step = progressed(accepted, Stage.AWAITING_ALLOCATION)
    await handlers.on_order_progressed(step, ctx(pool, step))
    edit = edited(accepted, {"A": 1, "B": 2})
    await handlers.on_order_edited(edit, ctx(pool, edit))
    [answer] = await published(pool, type="ShippingEditApplied")
    assert answer["released"] == [{"sku": "A", "quantity": 3}]
    assert (answer["allocated"], answer["allocation"]) == ([{"sku": "B", "quantity": 1}], "partial")
    rows = await pool.fetch("SELECT sku, allocated FROM stock ORDER BY sku")
    assert [(r["sku"], r["allocated"]) for r in rows] == [("A", 1), ("B", 1)]
    assert (await pool.fetchrow("SELECT coverage FROM allocation_requests"))["coverage"] == "partial"


async def test_shop_settings_left_out_keep_their_value(pool):
    commands = ShippingCommands()
    first = SetShopShipping(shop_id="kyoto-tea", issued_by="staff:test", cutoff="11:30", closures=[date(2030, 1, 2)])
    await commands.set_shop_shipping(first, ctx(pool, first))
    shipper = Shipper(name="京都茶舗", phone="075-000-0000", postal_code="600-8001", address="京都府京都市下京区1")
    second = SetShopShipping(shop_id="kyoto-tea", issued_by="staff:test", time_zone="Asia/Tokyo", shipper=shipper)
    await commands.set_shop_shipping(second, ctx(pool, second))
    async with pool.acquire() as conn:
        calendar = await store.shop_calendar(conn, "kyoto-tea")
        row = await store.shop(conn, "kyoto-tea")
    assert (calendar.cutoff, calendar.closures, calendar.closed_weekdays) == (time(11, 30), frozenset({date(2030, 1, 2)}), frozenset({5, 6}))
    assert Shipper.model_validate_json(row["shipper"]) == shipper
