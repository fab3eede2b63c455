"""Allocation: how much of an order's demand the available stock covers."""

from dataclasses import dataclass
from uuid import NAMESPACE_URL, UUID, uuid5


@dataclass(frozen=True)
class AllocationPlan:
    """Units to set aside per sku, and whether that covers the order fully, partly or not at all."""

    quantities: dict[str, int]
    coverage: str


def plan_allocation(demand: dict[str, int], available: dict[str, int]) -> AllocationPlan:
    """Takes what is available of each sku, up to what the order needs."""
    quantities = {sku: min(need, max(available.get(sku, 0), 0)) for sku, need in demand.items()}
    taken = sum(quantities.values())
    if taken == sum(demand.values()):
        coverage = "full"
    elif taken == 0:
        coverage = "none"
    else:
        coverage = "partial"
    return AllocationPlan({sku: qty for sku, qty in quantities.items() if qty > 0}, coverage)


def shipment_id_for(order_id: UUID, delivery_index: int) -> UUID:
    """The shipment of one delivery group: stable, so a repeated request is the same shipment."""
    return uuid5(NAMESPACE_URL, f"ordermesh-shipment:{order_id}/{delivery_index}")
