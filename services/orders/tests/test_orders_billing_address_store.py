"""The billing address the shop sent is kept with the order and shown to staff (real PostgreSQL)."""

import json
from pathlib import Path

from ordermesh_contracts import OrderAccepted, ShopOrderSubmitted, Stage, order_id_for
from ordermesh_orders import store
from ordermesh_orders.domain.intake import merchandise_total
from ordermesh_orders.domain.acceptance import Acceptance
from ordermesh_orders.domain.progress import OrderState, Progress, initial_flags

DATA = Path(__file__).parent / "data"


def _accepted(submitted: ShopOrderSubmitted, number: str) -> OrderAccepted:
    return OrderAccepted(
        order_id=order_id_for(submitted.shop_id, submitted.channel.value, number),
        shop_id=submitted.shop_id, channel=submitted.channel, external_order_no=number,
        currency=submitted.currency, customer=submitted.customer, deliveries=submitted.deliveries,
        charges=submitted.charges, merchandise_total=merchandise_total(submitted), payment=submitted.payment,
    )


async def test_the_staff_view_shows_the_billing_address_the_shop_sent_and_none_for_an_order_without_one(pool) -> None:
    submitted = ShopOrderSubmitted.model_validate(json.loads((DATA / "shop_order_card.json").read_text(encoding="utf-8")))
    billing = submitted.billing_address.model_copy(update={"name": "請求 花子", "city": "大阪市北区", "postal_code": "530-0001"})
    state = OrderState(stage=Stage.REVIEW, payment_method=submitted.payment.method, flags=initial_flags(submitted.payment.method, "ok"))
    with_billing, without = _accepted(submitted, "B-1"), _accepted(submitted, "B-2")
    async with pool.acquire() as conn:
        assert await store.insert_accepted_order(conn, Acceptance(with_billing, Progress(state), [], [], []), None, billing)
        assert await store.insert_accepted_order(conn, Acceptance(without, Progress(state), [], [], []), None)
        shown = await store.order_view(conn, with_billing.order_id, None)
        assert shown["billing_address"] == json.loads(billing.model_dump_json())
        assert (await store.order_view(conn, without.order_id, None))["billing_address"] is None
