"""How many provisional points an order earns."""

DEFAULT_RATE_PERCENT = 1


def provisional_points(merchandise_total: int, *, is_member: bool, rate_percent: int = DEFAULT_RATE_PERCENT) -> int:
    """Points for a member's order: a percentage of merchandise (no fees), rounded down; guests earn none."""
    if not is_member or merchandise_total <= 0:
        return 0
    return merchandise_total * rate_percent // 100
