"""The delivery-date and carrier label checks of an order's delivery groups, at acceptance, after an edit and after
staff change a group's carrier or time slot; a group that fails one is held back from the warehouse."""

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg

from ordermesh_contracts import DeliveryDateChecked, DeliveryGroup, LabelCheckFailed, ShipmentHeld, topics
from ordermesh_contracts.shipping import DeliveryDateCheck
from ordermesh_servicekit.consuming import UnitOfWork

from . import store, store_holds
from .store import CheckInputs
from .domain.carrier_rules import LabelRequest, Violation, carrier_family, check_label
from .domain.delivery_dates import OrderDateCheck, check_order_dates
from .domain.holds import Failure, holding

DEFAULT_CARRIER = "yamato"


@dataclass(frozen=True)
class CheckResults:
    """What the checks found for some delivery groups of an order."""

    dates: OrderDateCheck
    violations: list[tuple[str, Violation]] = field(default_factory=list)
    """(carrier family, violation) of each label-check failure."""

    def failures(self) -> dict[int, list[Failure]]:
        """Every failed check per checked delivery group (an empty list for a group that passed)."""
        found: dict[int, list[Failure]] = {check.delivery_index: [] for check in self.dates.deliveries}
        for check in self.dates.deliveries:
            found[check.delivery_index] += [("delivery_date", reason) for reason in check.reasons]
        for _, violation in self.violations:
            found.setdefault(violation.delivery_index, []).append((violation.kind, violation.reason))
        return found


def run_checks(
    inputs: CheckInputs, *, now: datetime, groups: dict[int, DeliveryGroup], cash_on_delivery: bool
) -> CheckResults:
    """Checks the given delivery groups (by index) as of `now`."""
    indices = sorted(groups)
    dates = check_order_dates(
        inputs.calendar,
        now,
        [(groups[i].address.prefecture, groups[i].address.postal_code, groups[i].requested_date) for i in indices],
        indices=indices,
    )
    violations = []
    for index in indices:
        delivery = groups[index]
        request = LabelRequest(
            delivery_index=index,
            carrier=delivery.carrier or DEFAULT_CARRIER,
            country=delivery.address.country,
            postal_code=delivery.address.postal_code,
            cash_on_delivery=cash_on_delivery,
            cool_types=frozenset(inputs.cool_types.get(sku, "normal") for sku, units in _net(delivery).items() if units > 0),
            time_slot=delivery.time_slot,
        )
        violations += [(carrier_family(request.carrier), violation) for violation in check_label(request)]
    return CheckResults(dates, violations)


def holds_of(results: CheckResults, confirmed: set[str]) -> dict[int, list[Failure]]:
    """The failures that hold each checked group, given the check categories staff confirmed for the order."""
    return {index: holding(failures, confirmed) for index, failures in results.failures().items()}


async def check_groups(
    conn: asyncpg.Connection,
    *,
    order_id: UUID,
    shop_id: str,
    now: datetime,
    groups: dict[int, DeliveryGroup],
    cash_on_delivery: bool,
    inputs: CheckInputs | None = None,
) -> tuple[CheckResults, dict[int, list[Failure]]]:
    """Reads what the checks need (one statement; none when given its `inputs`) and checks the given delivery groups
    (by index) as of `now`: what they found, and what holds each group; nothing is stored or published."""
    if inputs is None:
        inputs = await store.check_inputs(conn, shop_id, order_id, skus_of(groups))
    results = run_checks(inputs, now=now, groups=groups, cash_on_delivery=cash_on_delivery)
    return results, holds_of(results, inputs.confirmed)


def skus_of(groups: dict[int, DeliveryGroup]) -> list[str]:
    """Every sku of these delivery groups, in order."""
    return sorted({line.sku for group in groups.values() for line in group.lines})


async def publish_checks(
    uow: UnitOfWork,
    *,
    order_id: UUID,
    shop_id: str,
    now: datetime,
    groups: dict[int, DeliveryGroup],
    cash_on_delivery: bool,
    cause: dict[str, UUID],
) -> dict[int, list[Failure]]:
    """Checks the given delivery groups (by index) as of `now`: publishes DeliveryDateChecked and one LabelCheckFailed
    per carrier-rule violation, and records which groups are held back by a failure. Returns the holds per group."""
    results, holds = await check_groups(
        uow.conn, order_id=order_id, shop_id=shop_id, now=now, groups=groups, cash_on_delivery=cash_on_delivery
    )
    announce(uow, results, order_id=order_id, shop_id=shop_id, cause=cause)
    await store_holds.set_holds(uow.conn, order_id, holds)
    return holds


def announce(uow: UnitOfWork, results: CheckResults, *, order_id: UUID, shop_id: str, cause: dict[str, UUID]) -> None:
    """Publishes what the checks found: DeliveryDateChecked, then one LabelCheckFailed per violation."""
    dates = results.dates
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
    for carrier, violation in results.violations:
        uow.publish(
            topics.SHIPPING_EVENTS,
            LabelCheckFailed(
                order_id=order_id,
                shop_id=shop_id,
                delivery_index=violation.delivery_index,
                carrier=carrier,
                kind=violation.kind,
                reason=violation.reason,
                **cause,
            ),
        )


def publish_held(uow: UnitOfWork, order_id: UUID, shop_id: str, index: int, failures: list[Failure], cause: dict) -> None:
    """Announces that a delivery group is held back from the warehouse, and why."""
    uow.publish(topics.SHIPPING_EVENTS, held_announcement(order_id, shop_id, index, failures, cause))


def held_announcement(order_id: UUID, shop_id: str, index: int, failures: list[Failure], cause: dict) -> ShipmentHeld:
    """ShipmentHeld: a delivery group is held back from the warehouse, and why."""
    return ShipmentHeld(
        order_id=order_id, shop_id=shop_id, delivery_index=index, checks=[check for check, _ in failures],
        reasons=[reason for _, reason in failures], **cause,
    )


def _net(delivery: DeliveryGroup) -> dict[str, int]:
    net: dict[str, int] = {}
    for line in delivery.lines:
        net[line.sku] = net.get(line.sku, 0) + line.quantity
    return net
