"""Parcels: a shipment (one delivery group) may leave in several, each with its own tracking number and units."""

from collections import Counter
from dataclasses import dataclass

PARTLY_SHIPPED = "partly_shipped"
SHIPPED = "shipped"


@dataclass(frozen=True)
class ParcelPlan:
    """What one parcel does to its shipment: the units it carries per sku and the shipment's status afterwards."""

    units: dict[str, int]
    status: str


class ParcelRefused(ValueError):
    """A parcel that can't be booked against its shipment (it carries nothing, or more than is left to ship)."""


def units_of(lines: list[tuple[str, int]]) -> dict[str, int]:
    """Units per sku of (sku, quantity) lines; a sku named twice adds up, lines of nothing are left out."""
    units: Counter[str] = Counter()
    for sku, quantity in lines:
        units[sku] += quantity
    return {sku: count for sku, count in units.items() if count > 0}


def unshipped(group: dict[str, int], shipped: dict[str, int]) -> dict[str, int]:
    """Units per sku of a delivery group that no parcel has carried yet."""
    left = {sku: units - shipped.get(sku, 0) for sku, units in group.items()}
    return {sku: units for sku, units in left.items() if units > 0}


def plan_parcel(group: dict[str, int], shipped_before: dict[str, int], parcel: dict[str, int]) -> ParcelPlan:
    """Books a parcel against its delivery group's units, less those its earlier parcels carried.

    The shipment is shipped once every unit of the group is out, partly shipped before. Raises ParcelRefused
    for a parcel carrying no units, or more of a sku than is still unshipped (a sku the group lacks included).
    """
    if not parcel:
        raise ParcelRefused("the parcel carries no units")
    left = unshipped(group, shipped_before)
    excess = [
        f"{sku}: {units} in the parcel, {left.get(sku, 0)} unshipped"
        for sku, units in sorted(parcel.items())
        if units > left.get(sku, 0)
    ]
    if excess:
        raise ParcelRefused("the parcel carries more than the shipment has unshipped (" + "; ".join(excess) + ")")
    after = Counter(shipped_before)
    after.update(parcel)
    return ParcelPlan(dict(parcel), SHIPPED if not unshipped(group, dict(after)) else PARTLY_SHIPPED)
