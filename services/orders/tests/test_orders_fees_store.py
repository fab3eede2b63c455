"""The shop's shipping fee table on a real PostgreSQL: stored and replaced per shop, refused whole with every
unknown prefecture named, and used by a merge that is given no fee."""

import json
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from ordermesh_contracts import (
    MergeOrders,
    SetShippingFees,
    ShopOrderSubmitted,
    order_id_for,
    topics,
)
from ordermesh_orders import command_handlers, handlers, store_fees
from ordermesh_orders.domain.fees import FeeTable
from ordermesh_servicekit.commands import CommandRefused
from ordermesh_servicekit.consuming import MessageContext

DATA = Path(__file__).parent / "data"
SHOP = "osaka-knives"
MERCHANDISE = 14300 + 2 * 3080 - 308  # of one shop_order_cash_on_delivery.json, to 大阪府 with no shipping fee


async def run(pool, message, handler, topic=topics.ORDERS_COMMANDS) -> None:
    await handler(message, MessageContext(pool, message.event_id, topic, log=None))


async def command(pool, message) -> None:
    await run(pool, message, command_handlers.COMMAND_HANDLERS[type(message)])


def fees(**fields) -> SetShippingFees:
    return SetShippingFees(shop_id=SHOP, issued_by="staff:test", **fields)


async def take_in(pool, number: int) -> UUID:
    raw = json.loads((DATA / "shop_order_cash_on_delivery.json").read_text(encoding="utf-8"))
    raw.update(event_id=str(uuid4()), external_order_no=f"F-{number}")
    order = ShopOrderSubmitted.model_validate(raw)
    await run(pool, order, handlers.on_shop_order_submitted, topics.SHOP_ORDERS)
    return order_id_for(SHOP, order.channel.value, order.external_order_no)


async def replies(pool) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.OPS_REPLIES)
    return [json.loads(row["payload"]) for row in rows]


async def test_a_shops_table_is_stored_replaced_and_kept_apart_from_other_shops(pool) -> None:
    async with pool.acquire() as conn:
        assert await store_fees.fee_table(conn, SHOP) is None
        first = FeeTable(fee=660, by_prefecture={"北海道": 1320}, free_from=5000, remote_island_surcharge=1100)
        await store_fees.save_fee_table(conn, SHOP, first, "staff:a")
        await store_fees.save_fee_table(conn, "other-shop", FeeTable(fee=900), "staff:b")
        assert await store_fees.fee_table(conn, SHOP) == first
        await store_fees.save_fee_table(conn, SHOP, FeeTable(fee=700), "staff:c")
        assert await store_fees.fee_table(conn, SHOP) == FeeTable(fee=700)
        assert await store_fees.fee_table(conn, "other-shop") == FeeTable(fee=900)
        assert await conn.fetchval("SELECT updated_by FROM shop_shipping_fees WHERE shop_id = $1", SHOP) == "staff:c"


async def test_setting_fees_answers_with_the_table_and_unknown_prefectures_refuse_it_whole(pool) -> None:
    await command(pool, fees(fee=660, by_prefecture={"北海道": 1320}, free_from=5000, remote_island_surcharge=1100))
    [accepted] = await replies(pool)
    assert accepted["type"] == "CommandAccepted"
    assert accepted["details"] == {"fee": 660, "by_prefecture": {"北海道": 1320}, "free_from": 5000, "remote_island_surcharge": 1100}
    with pytest.raises(CommandRefused) as refused:
        await command(pool, fees(fee=0, by_prefecture={"北海道": 1320, "Hokkaido": 1, "東京": 2, "沖縄県": -5}))
    assert refused.value.reasons == [
        "unknown prefectures: Hokkaido, 東京 (use the full name, e.g. 北海道, 東京都, 沖縄県)",
        "the fee for 沖縄県 is negative (-5)",
    ]
    async with pool.acquire() as conn:
        assert (await store_fees.fee_table(conn, SHOP)).fee == 660


async def test_a_merge_given_no_fee_charges_the_tables_fee_for_the_merged_destination_not_the_sources_highest(pool) -> None:
    await command(pool, fees(fee=800, by_prefecture={"大阪府": 1000}, free_from=2 * MERCHANDISE + 1))
    ids = [await take_in(pool, n) for n in (1, 2)]
    await command(pool, MergeOrders(shop_id=SHOP, issued_by="staff:test", order_ids=ids))
    [merged] = [r for r in await replies(pool) if r["command_type"] == "MergeOrders"]
    assert (merged["type"], merged["details"]["shipping_fee"]) == ("CommandAccepted", 1000)
    row = await pool.fetchrow("SELECT total, snapshot FROM orders WHERE order_id = $1", UUID(merged["details"]["order_id"]))
    assert json.loads(row["snapshot"])["charges"]["shipping_fee"] == 1000
    assert row["total"] == 2 * MERCHANDISE + 1000 + 330
    assert [r["stage"] for r in await pool.fetch("SELECT stage FROM orders WHERE order_id = ANY($1)", ids)] == ["cancelled"] * 2


async def test_a_merge_given_a_fee_keeps_it_and_a_shop_without_a_table_keeps_the_sources_highest(pool) -> None:
    ids = [await take_in(pool, n) for n in (1, 2)]
    await command(pool, MergeOrders(shop_id=SHOP, issued_by="staff:test", order_ids=ids))
    [merged] = [r for r in await replies(pool) if r["command_type"] == "MergeOrders"]
    assert (merged["type"], merged["details"]["shipping_fee"]) == ("CommandAccepted", 0)
    await command(pool, fees(fee=800))
    ids = [await take_in(pool, n) for n in (3, 4)]
    await command(pool, MergeOrders(shop_id=SHOP, issued_by="staff:test", order_ids=ids, shipping_fee=550))
    [_, given] = [r for r in await replies(pool) if r["command_type"] == "MergeOrders"]
    assert (given["type"], given["details"]["shipping_fee"], given["details"]["total"]) == ("CommandAccepted", 550, 2 * MERCHANDISE + 550 + 330)
