"""The shipping database's stock agrees with the orders: per sku and warehouse, units allocated equal what the
orders' allocations still hold (set aside, less what their parcels carried). Every shipping e2e module checks this
after each of its tests with `stock_disagreements`; the test here checks it after a burst of ordinary orders."""

import uuid

from ordermesh_contracts import ImportStock, StockLevel, order_id_for, topics
from ordermesh_devstack.demo import demo_order
from support import fetch, publish_raw

DISAGREEMENTS = """
WITH left_stock AS (
    SELECT p.order_id, l.sku, sum(l.quantity) AS units
    FROM parcels p JOIN parcel_lines l ON l.shipment_id = p.shipment_id AND l.tracking_number = p.tracking_number
    GROUP BY p.order_id, l.sku
), held AS (
    SELECT a.sku, a.warehouse, sum(greatest(a.quantity - coalesce(g.units, 0), 0)) AS units
    FROM allocations a LEFT JOIN left_stock g ON g.order_id = a.order_id AND g.sku = a.sku
    GROUP BY a.sku, a.warehouse
)
SELECT s.sku, s.warehouse, s.on_hand, s.allocated, coalesce(h.units, 0) AS held_by_orders
FROM stock s FULL JOIN held h ON h.sku = s.sku AND h.warehouse = s.warehouse
WHERE coalesce(s.allocated, -1) <> coalesce(h.units, 0) OR s.on_hand < s.allocated
ORDER BY 1, 2
"""


async def stock_disagreements(stack) -> list[dict]:
    """Skus whose allocated units differ from what orders hold (one snapshot: each change commits as one unit)."""
    return [dict(row) for row in await fetch(stack.service_dsns["shipping"], DISAGREEMENTS)]


async def test_stock_agrees_with_the_orders_after_a_burst_of_orders_competing_for_little_stock(stack, recorder):
    sku = f"BURST-{uuid.uuid4().hex[:8]}"
    command = ImportStock(shop_id="demo-shop", issued_by="e2e", lines=[StockLevel(sku=sku, on_hand=5)], allow_new_skus=True)
    await publish_raw(stack.bootstrap, topics.SHIPPING_COMMANDS, command.model_dump_json().encode(), command.kafka_key().encode())
    [reply] = await recorder.wait_for(topics.OPS_REPLIES, command_id=command.event_id, timeout=60)
    assert reply.json()["type"] == "CommandAccepted"
    ids = []
    for number in range(8):
        base = demo_order(995_100 + number)
        line = base.deliveries[0].lines[0].model_copy(update={"sku": sku, "quantity": 2})
        order = base.model_copy(update={
            "deliveries": [base.deliveries[0].model_copy(update={"lines": [line]})],
            "charges": base.charges.model_copy(update={"total": line.unit_price * 2 + base.charges.shipping_fee}),
        })
        await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
        ids.append(order_id_for(order.shop_id, order.channel.value, order.external_order_no))
    allocations = []
    for order_id in ids:
        [event] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="StockAllocated", order_id=order_id, timeout=120)
        allocations.append(event.json()["allocation"])
    assert sorted(allocations) == ["full", "full", "none", "none", "none", "none", "none", "partial"]
    assert await stock_disagreements(stack) == []
