"""Taking in an accepted order: its lines and delivery groups as shipping keeps them, checked as they arrive."""

from uuid import UUID

import asyncpg

from ordermesh_contracts import DeliveryGroup, Message, OrderAccepted, PaymentMethod
from ordermesh_servicekit.consuming import UnitOfWork
from ordermesh_servicekit.unit_of_work import InboxClaim

from . import store
from .checks import DEFAULT_CARRIER, announce, check_groups, skus_of
from .store import CheckInputs
from .domain.holds import Failure

CheckInputsOfOrders = dict[tuple[UUID, str], CheckInputs]
"""What the checks of accepted orders read, by (order id, shop id)."""


async def accept_order(uow: UnitOfWork, order: OrderAccepted, preloaded: CheckInputsOfOrders | None = None) -> None:
    """Keeps the order's delivery groups and lines, checks delivery dates and carrier rules, records what holds each
    group back from the warehouse, and publishes what the checks found: one read, one write (no read when the batch
    preloaded what the checks read)."""
    groups = dict(enumerate(order.deliveries))
    cash_on_delivery = order.payment.method is PaymentMethod.CASH_ON_DELIVERY
    results, holds = await check_groups(
        uow.conn, order_id=order.order_id, shop_id=order.shop_id, now=order.occurred_at, groups=groups,
        cash_on_delivery=cash_on_delivery, inputs=preloaded.get((order.order_id, order.shop_id)) if preloaded else None,
    )
    await store.save_order(
        uow.conn, order.order_id, order.shop_id, payment_method=order.payment.method.value, currency=order.currency,
        accepted_at=order.occurred_at,
        groups=[
            delivery_row(
                index, group, carrier=group.carrier or DEFAULT_CARRIER,
                cod_amount=order.charges.total if cash_on_delivery and index == 0 else None, holds=holds[index],
            )
            for index, group in groups.items()
        ],
        lines=lines_of(groups),
    )
    announce(uow, results, order_id=order.order_id, shop_id=order.shop_id, cause=order.caused())


async def read_accepted_checks(
    conn: asyncpg.Connection, events: list[Message], claim: InboxClaim | None = None
) -> CheckInputsOfOrders | None:
    """The preload of the orders events' subscription: what the checks of the batch's accepted orders read, in one
    statement that writes the batch's inbox rows too when given their `claim` (None, and no statement, when the batch
    accepts no order). It stays true through the batch: no message that joins one writes what the checks read (shop
    calendars and sku attributes are set by staff commands, confirmed checks by DeliveryChecksConfirmed, which goes
    alone), so every accepted order of the batch may use it."""
    skus: dict[tuple[UUID, str], set[str]] = {}
    for event in events:
        if isinstance(event, OrderAccepted):
            skus.setdefault((event.order_id, event.shop_id), set()).update(skus_of(dict(enumerate(event.deliveries))))
    if not skus:
        return None
    return await store.check_inputs_of_orders(conn, [(order, shop, sorted(of)) for (order, shop), of in skus.items()], claim)


def lines_of(groups: dict[int, DeliveryGroup]) -> list[tuple]:
    """Per delivery group and sku (a sku twice in a group adds up): delivery index, sku, units, carrier, and the
    first line's name and unit price."""
    lines: dict[tuple[int, str], list] = {}
    for index, group in groups.items():
        carrier = group.carrier or DEFAULT_CARRIER
        for line in group.lines:
            row = lines.setdefault((index, line.sku), [index, line.sku, 0, carrier, line.name, line.unit_price])
            row[2] += line.quantity
    return [tuple(row) for row in lines.values()]


def delivery_row(
    index: int, group: DeliveryGroup, *, carrier: str, cod_amount: int | None, holds: list[Failure] = ()
) -> dict:
    """A delivery group as `store.save_deliveries` (and `store.save_order`) takes it."""
    return {
        "delivery_index": index,
        "address": group.address.model_dump(mode="json"),
        "requested_date": group.requested_date.isoformat() if group.requested_date else None,
        "time_slot": group.time_slot,
        "carrier": carrier,
        "cod_amount": cod_amount,
        "held_checks": [check for check, _ in holds],
        "hold_reasons": [reason for _, reason in holds],
    }
