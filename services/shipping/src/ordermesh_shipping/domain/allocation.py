"""Allocation: how much of an order's demand the available stock covers, and topping up waiting orders."""

from dataclasses import dataclass
from uuid import NAMESPACE_URL, UUID, uuid5


@dataclass(frozen=True)
class AllocationPlan:
    """Units to set aside per sku, and whether that covers the order fully, partly or not at all."""

    quantities: dict[str, int]
    coverage: str


def coverage_of(demand: dict[str, int], allocated: dict[str, int]) -> str:
    """full, partial or none: how much of `demand` the `allocated` units cover."""
    taken = sum(min(allocated.get(sku, 0), need) for sku, need in demand.items())
    if taken >= sum(demand.values()):
        return "full"
    return "none" if taken == 0 else "partial"


def plan_allocation(demand: dict[str, int], available: dict[str, int]) -> AllocationPlan:
    """Takes what is available of each sku, up to what the order needs."""
    quantities = {sku: min(need, max(available.get(sku, 0), 0)) for sku, need in demand.items()}
    return AllocationPlan({sku: qty for sku, qty in quantities.items() if qty > 0}, coverage_of(demand, quantities))


def plan_top_up(demand: dict[str, int], already: dict[str, int], available: dict[str, int]) -> AllocationPlan:
    """For an order waiting for stock: the extra units to set aside now, and the order's coverage after that."""
    missing = {sku: need - already.get(sku, 0) for sku, need in demand.items() if need > already.get(sku, 0)}
    extra = plan_allocation(missing, available).quantities
    total = {sku: already.get(sku, 0) + extra.get(sku, 0) for sku in set(already) | set(extra)}
    return AllocationPlan(extra, coverage_of(demand, total))


def release_plan(allocated: dict[str, int], shipped: dict[str, int]) -> dict[str, int]:
    """Units to give back to stock when an order is cancelled: what was set aside and has not shipped."""
    release = {sku: units - shipped.get(sku, 0) for sku, units in allocated.items()}
    return {sku: units for sku, units in release.items() if units > 0}


def from_allocation(shipped: dict[str, int], allocated: dict[str, int], shipped_before: dict[str, int]) -> dict[str, int]:
    """Of the units a shipment takes, how many come out of the order's allocation: what is still set aside for
    it (allocated, shipped included, less what shipped before); the rest was never allocated."""
    return {sku: max(0, min(units, allocated.get(sku, 0) - shipped_before.get(sku, 0))) for sku, units in shipped.items()}


def shipment_id_for(order_id: UUID, delivery_index: int) -> UUID:
    """The shipment of one delivery group: stable, so a repeated request is the same shipment."""
    return uuid5(NAMESPACE_URL, f"ordermesh-shipment:{order_id}/{delivery_index}")
