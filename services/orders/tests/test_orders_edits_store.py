"""What edits are checked against, on a real PostgreSQL: units shipped per parcel and what the customer paid."""

import json
from pathlib import Path
from uuid import uuid4

import pytest

from ordermesh_contracts import OrderAccepted, ShopOrderSubmitted, Stage, order_id_for
from ordermesh_orders import store, store_edits
from ordermesh_orders.domain.intake import merchandise_total
from ordermesh_orders.domain.acceptance import Acceptance
from ordermesh_orders.domain.progress import OrderState, Progress, initial_flags

DATA = Path(__file__).parent / "data"


async def _order(conn, suffix: str = "") -> OrderAccepted:
    submitted = ShopOrderSubmitted.model_validate(json.loads((DATA / "shop_order_card.json").read_text(encoding="utf-8")))
    submitted = submitted.model_copy(update={"external_order_no": submitted.external_order_no + suffix})
    accepted = OrderAccepted(
        order_id=order_id_for(submitted.shop_id, submitted.channel.value, submitted.external_order_no),
        shop_id=submitted.shop_id, channel=submitted.channel, external_order_no=submitted.external_order_no,
        currency=submitted.currency, customer=submitted.customer, deliveries=submitted.deliveries,
        charges=submitted.charges, merchandise_total=merchandise_total(submitted), payment=submitted.payment,
    )
    assert await store.insert_accepted_order(conn, Acceptance(accepted, Progress(_state(submitted)), [], [], []), None)
    return accepted


def _state(order) -> OrderState:
    return OrderState(stage=Stage.AWAITING_ALLOCATION, payment_method=order.payment.method, flags=initial_flags(order.payment.method, "ok"))


def _parcel(shipment, tracking_number: str, *lines: tuple[str, int]) -> store.Kept:
    return store.Kept(parcels=(store.Parcel(shipment, 0, tracking_number, lines),))


async def test_parcels_of_one_shipment_add_up_and_a_repeated_parcel_report_does_not(pool) -> None:
    async with pool.acquire() as conn:
        order = await _order(conn)
        shipment = uuid4()
        second = _parcel(shipment, "222222222222", ("MATCHA-UJI-40G", 1), ("CHAWAN-KIYOMIZU", 1))
        await store.save_state(conn, order.order_id, _state(order), kept=_parcel(shipment, "111111111111", ("MATCHA-UJI-40G", 1)))
        await store.save_state(conn, order.order_id, _state(order), kept=second)
        await store.save_state(conn, order.order_id, _state(order), kept=second)
        assert await store_edits.shipped_units(conn, order.order_id) == {(0, "MATCHA-UJI-40G"): 2, (0, "CHAWAN-KIYOMIZU"): 1}
        # a batch's saves of one order joined into one save: the repeated parcel still overwrites
        await store.save_states(conn, [store.StateSave(order.order_id, _state(order), kept=second.then(second))])
        assert await store_edits.shipped_units(conn, order.order_id) == {(0, "MATCHA-UJI-40G"): 2, (0, "CHAWAN-KIYOMIZU"): 1}


PAYMENTS = [
    store.Paid(captured=9660),
    store.Paid(refunded_more=1000),  # an edit's refund
    store.Paid(refunded_total=1500),  # a later refund's running total
    store.Paid(refunded_total=1000),  # a stale, redelivered one
]


async def test_paid_is_captures_plus_received_less_refunds_whichever_order_the_running_totals_come_in(pool) -> None:
    async with pool.acquire() as conn:
        order = await _order(conn)
        for paid in PAYMENTS:
            await store.save_state(conn, order.order_id, _state(order), kept=store.Kept(paid=paid))
        _, paid, edits = await store_edits.edit_basis(conn, order.order_id)
        assert (paid, edits) == (9660 - 1500, 0)


@pytest.mark.parametrize("amounts", [PAYMENTS, PAYMENTS[::-1], [PAYMENTS[2], PAYMENTS[1], PAYMENTS[0], PAYMENTS[3], PAYMENTS[1]]])
async def test_what_was_paid_joined_in_one_save_is_what_saving_each_in_turn_leaves(pool, amounts) -> None:
    async with pool.acquire() as conn:
        apart, joined = await _order(conn), await _order(conn, "-joined")
        await store.save_states(conn, [store.StateSave(apart.order_id, _state(apart), kept=store.Kept(paid=store.Paid(received_total=700, refunded_total=200)))])
        await store.save_states(conn, [store.StateSave(joined.order_id, _state(joined), kept=store.Kept(paid=store.Paid(received_total=700, refunded_total=200)))])
        for paid in amounts:
            await store.save_state(conn, apart.order_id, _state(apart), kept=store.Kept(paid=paid))
        together = store.Kept()
        for paid in amounts:
            together = together.then(store.Kept(paid=paid))
        await store.save_state(conn, joined.order_id, _state(joined), kept=together)
        columns = "SELECT paid_captured, paid_received, paid_refunded FROM orders WHERE order_id = $1"
        assert tuple(await conn.fetchrow(columns, joined.order_id)) == tuple(await conn.fetchrow(columns, apart.order_id))

