"""Which delivery groups of an order ready to ship go to the warehouse now, which requests stand, which groups wait."""

from dataclasses import dataclass
from uuid import UUID

from .holds import Failure


@dataclass(frozen=True)
class Group:
    """A delivery group as the warehouse gets it: carrier, (sku, units) lines, cash to collect, what holds it back."""

    index: int
    carrier: str
    lines: list[tuple[str, int]]
    cash_on_delivery: int | None
    holds: list[Failure]


@dataclass(frozen=True)
class Shipment:
    """A group's shipment as recorded: its id, status and the warehouse's request id, if any."""

    shipment_id: UUID
    status: str
    warehouse_request_id: str | None


@dataclass(frozen=True)
class RequestPlan:
    """What to do with the order's groups, by delivery index."""

    to_request: list[tuple[Group, UUID]]
    """Groups to ask the warehouse for, with their shipment."""
    standing: list[tuple[Group, Shipment]]
    """Groups already at the warehouse, perhaps with lines an edit changed since: their request stands as it is."""
    held: list[Group]
    """Groups held back by a failed check."""


def plan_requests(groups: list[Group], shipments: dict[int, Shipment]) -> RequestPlan:
    """Decides from each group's shipment status: 'requesting' goes to the warehouse, 'requested' stands, 'held'
    waits for staff; any other status (shipped, cancelled, failed) is left alone."""
    plan = RequestPlan([], [], [])
    for group in sorted(groups, key=lambda g: g.index):
        shipment = shipments[group.index]
        if shipment.status == "requesting":
            plan.to_request.append((group, shipment.shipment_id))
        elif shipment.status == "requested":
            plan.standing.append((group, shipment))
        elif shipment.status == "held" and group.holds:
            plan.held.append(group)
    return plan
