"""Which failed checks hold a delivery group back from the warehouse (seed 002: they are flags that stop the order),
and which staff confirmation lifts them."""

NOT_HOLDING = frozenset({"relay_area"})
"""A relay area costs a surcharge and days, but the carrier delivers: it is a notice, not a hold."""

Failure = tuple[str, str]
"""A failed check of a delivery group: ('delivery_date' or a label-check kind, the reason)."""


def category_of(check: str) -> str:
    """What staff confirm to lift a hold: 'delivery_date' for the date check, 'label' for every carrier label check."""
    return "delivery_date" if check == "delivery_date" else "label"


def holding(failures: list[Failure], confirmed: set[str]) -> list[Failure]:
    """The failures that hold the group: not notices, and not of a category staff confirmed for the order."""
    return [(check, reason) for check, reason in failures if check not in NOT_HOLDING and category_of(check) not in confirmed]
