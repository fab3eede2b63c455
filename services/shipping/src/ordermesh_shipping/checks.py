"""The delivery-date and carrier label checks of an order's delivery groups, at acceptance and after an edit."""

from datetime import datetime
from uuid import UUID

from ordermesh_contracts import DeliveryDateChecked, DeliveryGroup, LabelCheckFailed, topics
from ordermesh_contracts.shipping import DeliveryDateCheck
from ordermesh_servicekit.consuming import UnitOfWork

from . import store
from .domain.carrier_rules import LabelRequest, carrier_family, check_label
from .domain.delivery_dates import check_order_dates

DEFAULT_CARRIER = "yamato"


async def publish_checks(
    uow: UnitOfWork,
    *,
    order_id: UUID,
    shop_id: str,
    now: datetime,
    groups: dict[int, DeliveryGroup],
    cash_on_delivery: bool,
    cause: dict[str, UUID],
) -> None:
    """Checks the given delivery groups (by index) as of `now`: publishes DeliveryDateChecked, and one
    LabelCheckFailed per carrier-rule violation."""
    indices = sorted(groups)
    calendar = await store.shop_calendar(uow.conn, shop_id)
    dates = check_order_dates(
        calendar,
        now,
        [(groups[i].address.prefecture, groups[i].address.postal_code, groups[i].requested_date) for i in indices],
        indices=indices,
    )
    uow.publish(
        topics.SHIPPING_EVENTS,
        DeliveryDateChecked(
            order_id=order_id,
            shop_id=shop_id,
            result="ok" if dates.ok else "error",
            earliest_ship_date=dates.earliest_ship_date,
            earliest_delivery_date=dates.earliest_delivery_date,
            reasons=dates.reasons,
            deliveries=[
                DeliveryDateCheck(
                    delivery_index=check.delivery_index,
                    requested_date=check.requested_date,
                    earliest_delivery_date=check.earliest_delivery_date,
                    ok=check.ok,
                )
                for check in dates.deliveries
            ],
            **cause,
        ),
    )
    cool = await store.cool_types(uow.conn, sorted({line.sku for group in groups.values() for line in group.lines}))
    for index in indices:
        delivery = groups[index]
        request = LabelRequest(
            delivery_index=index,
            carrier=delivery.carrier or DEFAULT_CARRIER,
            country=delivery.address.country,
            postal_code=delivery.address.postal_code,
            cash_on_delivery=cash_on_delivery,
            cool_types=frozenset(cool.get(sku, "normal") for sku, units in _net(delivery).items() if units > 0),
            time_slot=delivery.time_slot,
        )
        for violation in check_label(request):
            uow.publish(
                topics.SHIPPING_EVENTS,
                LabelCheckFailed(
                    order_id=order_id,
                    shop_id=shop_id,
                    delivery_index=index,
                    carrier=carrier_family(request.carrier),
                    kind=violation.kind,
                    reason=violation.reason,
                    **cause,
                ),
            )


def _net(delivery: DeliveryGroup) -> dict[str, int]:
    net: dict[str, int] = {}
    for line in delivery.lines:
        net[line.sku] = net.get(line.sku, 0) + line.quantity
    return net
