"""What edits are checked against, on a real PostgreSQL: units shipped per parcel and what the customer paid."""

import json
from pathlib import Path
from uuid import uuid4

from ordermesh_contracts import OrderAccepted, ShopOrderSubmitted, Stage, order_id_for
from ordermesh_orders import store, store_edits
from ordermesh_orders.domain.intake import merchandise_total
from ordermesh_orders.domain.acceptance import Acceptance
from ordermesh_orders.domain.progress import OrderState, Progress, initial_flags

DATA = Path(__file__).parent / "data"


async def _order(conn) -> OrderAccepted:
    submitted = ShopOrderSubmitted.model_validate(json.loads((DATA / "shop_order_card.json").read_text(encoding="utf-8")))
    accepted = OrderAccepted(
        order_id=order_id_for(submitted.shop_id, submitted.channel.value, submitted.external_order_no),
        shop_id=submitted.shop_id, channel=submitted.channel, external_order_no=submitted.external_order_no,
        currency=submitted.currency, customer=submitted.customer, deliveries=submitted.deliveries,
        charges=submitted.charges, merchandise_total=merchandise_total(submitted), payment=submitted.payment,
    )
    state = OrderState(stage=Stage.AWAITING_ALLOCATION, payment_method=submitted.payment.method, flags=initial_flags(submitted.payment.method, "ok"))
    assert await store.insert_accepted_order(conn, Acceptance(accepted, Progress(state), [], [], []), None)
    return accepted


async def test_parcels_of_one_shipment_add_up_and_a_repeated_parcel_report_does_not(pool) -> None:
    async with pool.acquire() as conn:
        order = await _order(conn)
        shipment = uuid4()
        await store_edits.record_shipped(conn, order.order_id, shipment, 0, "111111111111", [("MATCHA-UJI-40G", 1)])
        await store_edits.record_shipped(conn, order.order_id, shipment, 0, "222222222222", [("MATCHA-UJI-40G", 1), ("CHAWAN-KIYOMIZU", 1)])
        await store_edits.record_shipped(conn, order.order_id, shipment, 0, "222222222222", [("MATCHA-UJI-40G", 1), ("CHAWAN-KIYOMIZU", 1)])
        assert await store_edits.shipped_units(conn, order.order_id) == {(0, "MATCHA-UJI-40G"): 2, (0, "CHAWAN-KIYOMIZU"): 1}


async def test_paid_is_captures_plus_received_less_refunds_whichever_order_the_running_totals_come_in(pool) -> None:
    async with pool.acquire() as conn:
        order = await _order(conn)
        await store_edits.record_payment_amounts(conn, order.order_id, captured=9660)
        await store_edits.record_payment_amounts(conn, order.order_id, refunded_more=1000)  # an edit's refund
        await store_edits.record_payment_amounts(conn, order.order_id, refunded_total=1500)  # a later refund's running total
        await store_edits.record_payment_amounts(conn, order.order_id, refunded_total=1000)  # a stale, redelivered one
        _, paid, edits = await store_edits.edit_basis(conn, order.order_id)
        assert (paid, edits) == (9660 - 1500, 0)
