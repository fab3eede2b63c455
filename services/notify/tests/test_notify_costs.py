"""What one mail costs the database: statements and transactions per handled cause, counted on a real PostgreSQL
through a query logger on every pooled connection of a pool that releases connections as the service's does."""

from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest
from ordermesh_contracts import OrderAccepted, OrderEdited, OrderProgressed, PointsConfirmed, ShipmentShipped, Stage
from ordermesh_notify.adapters.smtp import OutgoingMail
from ordermesh_notify.domain.templates import MailRenderer
from ordermesh_notify.handlers import NotifyHandlers
from ordermesh_notify.mailing import Mailer
from support import counted_pool, golden_message, statements_of
from doubles import StatementCounter


class AcceptingTransport:
    async def send(self, mail: OutgoingMail) -> None:
        pass


@pytest.fixture
async def counted(fresh_database: str) -> AsyncIterator[tuple[asyncpg.Pool, StatementCounter]]:
    async with counted_pool(fresh_database, "notify") as counted:
        yield counted


def accepted_order() -> OrderAccepted:
    return OrderAccepted.model_validate(golden_message("OrderAccepted", order_id=str(uuid4())))


def edit_of(order: OrderAccepted, *, edit_no: int, notify_customer: bool) -> OrderEdited:
    return OrderEdited.model_validate(golden_message(
        "OrderEdited", order_id=str(order.order_id), shop_id=order.shop_id, edit_no=edit_no, notify_customer=notify_customer,
    ))


async def test_a_mail_costs_its_claim_and_one_unit_of_work_and_a_redelivered_cause_one_lookup(counted) -> None:
    pool, counter = counted
    handlers = NotifyHandlers(Mailer(MailRenderer(), AcceptingTransport(), sender="s@example.com", mail_domain="example.com"))
    order = accepted_order()
    confirmation = await statements_of(pool, counter, handlers.on_order_accepted, order)
    ready = OrderProgressed(order_id=order.order_id, shop_id=order.shop_id, from_stage=Stage.AWAITING_ALLOCATION, to_stage=Stage.READY_TO_SHIP)
    preparing = await statements_of(pool, counter, handlers.on_order_progressed, ready)
    shipment = ShipmentShipped.model_validate(golden_message("ShipmentShipped", order_id=str(order.order_id), shop_id=order.shop_id))
    shipped = await statements_of(pool, counter, handlers.on_shipment_shipped, shipment)
    confirmed = PointsConfirmed(order_id=order.order_id, shop_id=order.shop_id, customer_id="C1", points=46)
    points = await statements_of(pool, counter, handlers.on_points_confirmed, confirmed)
    redelivered = await statements_of(pool, counter, handlers.on_points_confirmed, confirmed)
    edited_told = await statements_of(pool, counter, handlers.on_order_edited, edit_of(order, edit_no=1, notify_customer=True))
    edited_quietly = await statements_of(pool, counter, handlers.on_order_edited, edit_of(order, edit_no=2, notify_customer=False))

    statuses = await pool.fetch("SELECT kind, status FROM mail_log WHERE order_id = $1", order.order_id)
    assert {r["kind"]: r["status"] for r in statuses} == {
        "order_confirmation": "sent", "preparing_shipment": "not_applicable", "shipped": "sent", "points_confirmed": "not_applicable",
        "order_changed": "sent",
    }
    print(f"\ncost (statements, transactions): confirmation {confirmation}, preparing (not applicable) {preparing}, "
          f"shipped {shipped}, points (not applicable) {points}, redelivered {redelivered}, "
          f"edited and mailed {edited_told}, edited quietly {edited_quietly}")
    # Counted with the service's pool release (no reset query). Before the claim took the lookup's place and the
    # contact and the edit moved into it and the unit of work: confirmation 8/4, shipped 7/3, not applicable 6/2,
    # edited and mailed 8/4 (62 statements and 44 transactions an order before the lookups were batched).
    # Each mail: the claim (contact kept, setup loaded, mail claimed: one statement), SMTP, then the outcome, the inbox
    # row and the event in one statement (5 with BEGIN, outcome, inbox and event, COMMIT). A kind the shop turned off
    # is settled by the claim itself, with the inbox row and the event (2, and 5 before).
    assert confirmation == shipped == (2, 2)
    assert preparing == points == (1, 1)
    assert edited_told == (2, 2), edited_told  # the edit kept in the outcome's statement (6 in a transaction)
    assert edited_quietly == (1, 1), edited_quietly  # the edit kept with the inbox row (4: BEGIN, edit, inbox, COMMIT)
    assert redelivered == (1, 1), redelivered  # the claim finds the inbox row: nothing else
