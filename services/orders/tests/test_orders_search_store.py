"""The staff's order search on a real PostgreSQL: free text, flags, payment method, Tokyo days, paging, the task queue."""

import json
from datetime import date, datetime, timezone
from pathlib import Path

from ordermesh_contracts import OrderAccepted, ShopOrderSubmitted, Stage, order_id_for
from ordermesh_orders import store, store_search
from ordermesh_orders.domain.intake import merchandise_total
from ordermesh_orders.domain.acceptance import Acceptance
from ordermesh_orders.domain.progress import OrderState, Progress, initial_flags
from ordermesh_orders.store_search import OrderSearch

DATA = Path(__file__).parent / "data"


async def _order(conn, number: str, customer_name: str, created_at: datetime) -> OrderAccepted:
    submitted = ShopOrderSubmitted.model_validate(json.loads((DATA / "shop_order_card.json").read_text(encoding="utf-8")))
    customer = submitted.customer.model_copy(update={"name": customer_name, "customer_id": f"C-{number}"})
    accepted = OrderAccepted(
        order_id=order_id_for(submitted.shop_id, submitted.channel.value, number),
        shop_id=submitted.shop_id, channel=submitted.channel, external_order_no=number,
        currency=submitted.currency, customer=customer, deliveries=submitted.deliveries,
        charges=submitted.charges, merchandise_total=merchandise_total(submitted), payment=submitted.payment,
    )
    state = OrderState(stage=Stage.REVIEW, payment_method=submitted.payment.method, flags=initial_flags(submitted.payment.method, "ok"))
    assert await store.insert_accepted_order(conn, Acceptance(accepted, Progress(state), [], [], []), None)
    await conn.execute("UPDATE orders SET created_at = $2 WHERE order_id = $1", accepted.order_id, created_at)
    return accepted


async def test_orders_are_found_by_shop_order_number_customer_id_or_part_of_the_name_and_wildcards_are_literal(pool) -> None:
    async with pool.acquire() as conn:
        now = datetime.now(timezone.utc)
        first = await _order(conn, "A-100", "山田 太郎", now)
        await _order(conn, "A-101", "佐藤 花子", now)
        await _order(conn, "A-102", "100%_Tanaka", now)

        async def numbers(text: str) -> list[str]:
            rows, _ = await store_search.search_orders(conn, OrderSearch(text=text))
            return sorted(row["external_order_no"] for row in rows)

        assert await numbers("A-100") == ["A-100"]
        assert await numbers("C-A-101") == ["A-101"]
        assert await numbers("山田") == ["A-100"]
        assert await numbers("%") == ["A-102"]
        assert await numbers("_") == ["A-102"]
        [row], total = await store_search.search_orders(conn, OrderSearch(text="A-100"))
        assert total == 1 and row["order_id"] == first.order_id and row["customer_name"] == "山田 太郎"
        assert row["flags"]["address"] == "ok" and row["open_tasks"] == 0


async def test_days_are_calendar_days_of_the_given_time_zone(pool) -> None:
    async with pool.acquire() as conn:
        # 2026-03-01 23:30 in Tokyo is still 2026-03-01 14:30 UTC; 2026-03-02 00:30 in Tokyo is the 1st in UTC too.
        await _order(conn, "T-1", "A", datetime(2026, 3, 1, 14, 30, tzinfo=timezone.utc))
        await _order(conn, "T-2", "B", datetime(2026, 3, 1, 15, 30, tzinfo=timezone.utc))
        tokyo_first = OrderSearch(created_from=date(2026, 3, 1), created_to=date(2026, 3, 1), timezone="Asia/Tokyo")
        utc_first = OrderSearch(created_from=date(2026, 3, 1), created_to=date(2026, 3, 1))
        assert [r["external_order_no"] for r in (await store_search.search_orders(conn, tokyo_first))[0]] == ["T-1"]
        assert sorted(r["external_order_no"] for r in (await store_search.search_orders(conn, utc_first))[0]) == ["T-1", "T-2"]


async def test_paging_walks_every_matching_order_once_and_the_total_counts_them_all(pool) -> None:
    async with pool.acquire() as conn:
        now = datetime.now(timezone.utc)
        for n in range(25):
            await _order(conn, f"P-{n:03d}", "Page", now)
        seen: list[str] = []
        for offset in range(0, 30, 10):
            rows, total = await store_search.search_orders(conn, OrderSearch(text="Page"), offset=offset, limit=10)
            assert total == 25
            seen += [row["external_order_no"] for row in rows]
        assert sorted(seen) == [f"P-{n:03d}" for n in range(25)]


async def test_flag_payment_method_and_open_task_filters_and_the_task_queue(pool) -> None:
    async with pool.acquire() as conn:
        now = datetime.now(timezone.utc)
        flagged = await _order(conn, "F-1", "X", now)
        await _order(conn, "F-2", "Y", now)
        await conn.execute("UPDATE orders SET flags = flags || '{\"address\": \"error\"}' WHERE order_id = $1", flagged.order_id)
        await store.open_tasks(conn, flagged.order_id, [("address_check", "check the address", True)], opened_by="rules")

        rows, total = await store_search.search_orders(conn, OrderSearch(flag="address", flag_value="error"))
        assert (total, rows[0]["external_order_no"]) == (1, "F-1")
        rows, total = await store_search.search_orders(conn, OrderSearch(open_task="address_check"))
        assert (total, rows[0]["open_tasks"]) == (1, 1)
        assert (await store_search.search_orders(conn, OrderSearch(payment_method="card")))[1] == 2
        assert (await store_search.search_orders(conn, OrderSearch(payment_method="bank_transfer")))[1] == 0

        tasks, total = await store_search.open_task_queue(conn, None, None)
        assert total == 1 and tasks[0]["external_order_no"] == "F-1" and tasks[0]["kind"] == "address_check"
