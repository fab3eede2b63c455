"""Cancelling an order's shipping: which shipments are cancelled, which failed, and what stock goes back."""

from collections import Counter
from dataclasses import dataclass, field
from uuid import UUID

from .allocation import release_plan

SHIPPED_STATUSES = frozenset({"partly_shipped", "shipped", "delivered"})
"""A shipment in these states has (some of) its goods out: it can no longer be changed or cancelled."""
NEVER_AT_THE_WAREHOUSE = frozenset({"requesting", "request_failed", "held"})
"""A shipment in these states has no warehouse request to cancel: cancelling it is a record change only."""


@dataclass(frozen=True)
class ShipmentToCancel:
    """One shipment of the cancelled order as shipping knows it, with the units of its delivery group."""

    shipment_id: UUID
    delivery_index: int
    status: str
    lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FailedCancel:
    """A shipment that could not be cancelled, and why."""

    shipment_id: UUID
    delivery_index: int
    reason: str


@dataclass(frozen=True)
class CancellationPlan:
    """What the cancellation does: shipments to mark cancelled, failures to report, units to release."""

    cancelled: list[UUID]
    failed: list[FailedCancel]
    release: dict[str, int]


def needs_warehouse_cancel(status: str) -> bool:
    """Whether the warehouse holds a live request for a shipment in this state (so it must be asked to cancel)."""
    return status == "requested"


def plan_cancellation(
    shipments: list[ShipmentToCancel],
    warehouse_failures: dict[UUID, str | None],
    allocated: dict[str, int],
    *,
    restore_stock: bool,
) -> CancellationPlan:
    """Decides the cancellation from each shipment's current state and the warehouse's answers.

    `warehouse_failures` holds, for each shipment the warehouse was asked to cancel, None when it cancelled
    and the reason when it did not. A shipment that shipped, or whose warehouse request was not cancelled,
    keeps its units allocated (they leave, or may leave, with it); everything else allocated to the order
    goes back to stock when `restore_stock`, and stays allocated otherwise (staff handle it).
    """
    cancelled: list[UUID] = []
    failed: list[FailedCancel] = []
    held: Counter[str] = Counter()
    for shipment in shipments:
        reason = _failure(shipment, warehouse_failures)
        if shipment.status == "cancelled":
            continue
        if reason is None:
            cancelled.append(shipment.shipment_id)
            continue
        failed.append(FailedCancel(shipment.shipment_id, shipment.delivery_index, reason))
        held.update(shipment.lines)
    release = release_plan(allocated, dict(held)) if restore_stock else {}
    return CancellationPlan(cancelled, failed, release)


def _failure(shipment: ShipmentToCancel, warehouse_failures: dict[UUID, str | None]) -> str | None:
    if shipment.status in SHIPPED_STATUSES:
        return f"shipment already {shipment.status.replace('_', ' ')}"
    if shipment.status == "cancelled" or shipment.status in NEVER_AT_THE_WAREHOUSE:
        return None
    if shipment.shipment_id not in warehouse_failures:
        return f"the warehouse was not asked to cancel the {shipment.status} shipment"
    return warehouse_failures[shipment.shipment_id]
