"""Taking in an accepted order: its lines and delivery groups as shipping keeps them, checked as they arrive."""

from ordermesh_contracts import DeliveryGroup, OrderAccepted, PaymentMethod
from ordermesh_servicekit.consuming import UnitOfWork

from . import store_batch
from .batch_orders import BatchOrders
from .checks import DEFAULT_CARRIER, announce, check_groups
from .domain.holds import Failure
from .store_batch import AcceptedOrder


async def accept_order(uow: UnitOfWork, order: OrderAccepted, batch: BatchOrders | None = None) -> None:
    """Keeps the order's delivery groups and lines, checks delivery dates and carrier rules, records what holds each
    group back from the warehouse, and publishes what the checks found: one read, one write (in a `batch`, no read
    when it preloaded what the checks read, and the order is stored with the batch at its end)."""
    groups = dict(enumerate(order.deliveries))
    cash_on_delivery = order.payment.method is PaymentMethod.CASH_ON_DELIVERY
    results, holds = await check_groups(
        uow.conn, order_id=order.order_id, shop_id=order.shop_id, now=order.occurred_at, groups=groups,
        cash_on_delivery=cash_on_delivery, inputs=batch.checks.get((order.order_id, order.shop_id)) if batch is not None else None,
    )
    accepted = AcceptedOrder(
        order.order_id, order.shop_id, payment_method=order.payment.method.value, currency=order.currency,
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
    if batch is not None:
        await batch.accept(uow.conn, accepted)
    else:
        await store_batch.save_batch(uow.conn, [accepted], [])
    announce(uow, results, order_id=order.order_id, shop_id=order.shop_id, cause=order.caused())


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
    """A delivery group as `store.save_deliveries` (and `store_batch.save_batch`) takes it."""
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
