"""What one mail costs the database: statements and transactions per handled cause, counted on a real PostgreSQL
through a query logger on every pooled connection (pool resets included, as PostgreSQL sees them)."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from ordermesh_contracts import OrderAccepted, OrderProgressed, PointsConfirmed, ShipmentShipped, Stage
from ordermesh_notify.adapters.smtp import OutgoingMail
from ordermesh_notify.domain.templates import MailRenderer
from ordermesh_notify.handlers import NotifyHandlers
from ordermesh_notify.mailing import Mailer
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext
from support import migrated_pool
from doubles import StatementCounter

GOLDEN = Path(__file__).resolve().parents[3] / "contracts" / "tests" / "golden"




class AcceptingTransport:
    async def send(self, mail: OutgoingMail) -> None:
        pass


@pytest.fixture
async def counted(fresh_database: str) -> AsyncIterator[tuple[asyncpg.Pool, StatementCounter]]:
    counter = StatementCounter()
    async with migrated_pool(fresh_database, "notify", max_size=2):
        pass

    async def log_queries(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(counter)

    async with asyncpg.create_pool(fresh_database, min_size=1, max_size=4, init=log_queries) as pool:
        yield pool, counter


async def cost(pool, counter: StatementCounter, handler, message) -> tuple[int, int]:
    await asyncio.sleep(0)
    counter.reset()
    try:
        await handler(message, MessageContext(pool, message.event_id, "test", log=None))
    except DuplicateMessage:
        pass
    await asyncio.sleep(0)  # query loggers are called soon after each query, not during it
    return len(counter.statements), counter.transactions


def accepted_order() -> OrderAccepted:
    order = OrderAccepted.model_validate(json.loads((GOLDEN / "OrderAccepted.json").read_text("utf-8")))
    return order.model_copy(update={"event_id": uuid4(), "order_id": uuid4()})


async def test_a_mail_costs_one_lookup_and_one_unit_of_work_and_a_kind_not_applicable_nothing_more(counted) -> None:
    pool, counter = counted
    handlers = NotifyHandlers(Mailer(MailRenderer(), AcceptingTransport(), sender="s@example.com", mail_domain="example.com"))
    order = accepted_order()
    confirmation = await cost(pool, counter, handlers.on_order_accepted, order)
    ready = OrderProgressed(order_id=order.order_id, shop_id=order.shop_id, from_stage=Stage.AWAITING_ALLOCATION, to_stage=Stage.READY_TO_SHIP)
    preparing = await cost(pool, counter, handlers.on_order_progressed, ready)
    raw = json.loads((GOLDEN / "ShipmentShipped.json").read_text("utf-8"))
    shipment = ShipmentShipped.model_validate({**raw, "event_id": str(uuid4()), "order_id": str(order.order_id), "shop_id": order.shop_id})
    shipped = await cost(pool, counter, handlers.on_shipment_shipped, shipment)
    confirmed = PointsConfirmed(order_id=order.order_id, shop_id=order.shop_id, customer_id="C1", points=46)
    points = await cost(pool, counter, handlers.on_points_confirmed, confirmed)
    redelivered = await cost(pool, counter, handlers.on_points_confirmed, confirmed)

    statuses = await pool.fetch("SELECT kind, status FROM mail_log WHERE order_id = $1", order.order_id)
    assert {r["kind"]: r["status"] for r in statuses} == {
        "order_confirmation": "sent", "preparing_shipment": "not_applicable", "shipped": "sent", "points_confirmed": "not_applicable",
    }
    print(f"\ncost (statements, transactions): confirmation {confirmation}, preparing (not applicable) {preparing}, "
          f"shipped {shipped}, points (not applicable) {points}, redelivered {redelivered}")
    # Before the lookups were batched: 21/14, 12/9, 17/12, 12/9 and 2/2 (62 statements, 44 transactions an order).
    assert preparing == points
    assert points[0] <= 8 and points[1] <= 4, points  # lookup; the unit of work (inbox, log row, event); one pool reset after each
    assert shipped[0] <= 9 and shipped[1] <= 5, shipped  # lookup and intent; SMTP; the unit of work (inbox, result, event); two resets
    assert confirmation[0] <= 11 and confirmation[1] <= 7, confirmation  # the contact kept, then as shipped
    assert redelivered[0] <= 2 and redelivered[1] <= 2, redelivered  # the lookup finds the inbox row: nothing else
