"""The points domain without I/O: provisional points are a rounded-down share of merchandise, members only."""

import pytest
from ordermesh_points.domain.accrual import provisional_points


@pytest.mark.parametrize(
    ("merchandise_total", "points"),
    [(9620, 96), (9699, 96), (9700, 97), (100, 1), (99, 0), (0, 0)],
)
def test_a_member_earns_one_percent_rounded_down(merchandise_total: int, points: int) -> None:
    assert provisional_points(merchandise_total, is_member=True) == points


def test_a_shop_rate_other_than_one_percent_is_applied_and_rounded_down() -> None:
    assert provisional_points(9620, is_member=True, rate_percent=5) == 481
    assert provisional_points(9619, is_member=True, rate_percent=3) == 288


def test_a_guest_earns_no_points_however_large_the_order() -> None:
    assert provisional_points(1_000_000, is_member=False) == 0


def test_a_negative_merchandise_total_earns_no_points_rather_than_negative_ones() -> None:
    assert provisional_points(-500, is_member=True) == 0


# --- shop rate, campaigns and membership at order time ------------------------------------------------

from datetime import date  # noqa: E402

from ordermesh_points.domain.accrual import (  # noqa: E402
    Campaign,
    EarningLine,
    ShopPointsSettings,
    is_member_when_ordered,
    order_points,
    validate_settings,
)

MEMBER = date(2024, 4, 1)
ORDERED = date(2025, 3, 12)
LINES = [EarningLine("TEA-01", 3300), EarningLine("CUP-02", 1980)]


def test_order_points_are_the_shop_rate_of_the_lines_rounded_down_once() -> None:
    settings = ShopPointsSettings(rate_percent=3)
    assert order_points(LINES, ordered_on=ORDERED, member_since=MEMBER, settings=settings) == 158  # 5280 * 3% = 158.4


def test_a_customer_who_became_a_member_after_ordering_earns_no_bonus_points() -> None:
    later = date(2025, 3, 13)
    assert not is_member_when_ordered(later, ORDERED)
    assert order_points(LINES, ordered_on=ORDERED, member_since=later, settings=ShopPointsSettings()) == 0
    assert order_points(LINES, ordered_on=ORDERED, member_since=ORDERED, settings=ShopPointsSettings()) == 52


def test_a_campaign_multiplies_only_lines_of_its_skus_and_only_within_its_dates() -> None:
    campaign = Campaign(multiplier=5, starts_on=date(2025, 3, 1), ends_on=date(2025, 3, 12), skus=frozenset({"TEA-01"}))
    settings = ShopPointsSettings(rate_percent=1, campaigns=(campaign,))
    assert order_points(LINES, ordered_on=ORDERED, member_since=MEMBER, settings=settings) == (3300 * 5 + 1980) // 100
    after = date(2025, 3, 13)
    assert order_points(LINES, ordered_on=after, member_since=MEMBER, settings=settings) == 52


def test_campaigns_do_not_stack_the_best_multiplier_of_a_line_wins() -> None:
    settings = ShopPointsSettings(campaigns=(Campaign(multiplier=2), Campaign(multiplier=10, skus=frozenset({"CUP-02"}))))
    assert order_points(LINES, ordered_on=ORDERED, member_since=MEMBER, settings=settings) == (3300 * 2 + 1980 * 10) // 100


def test_settings_with_an_impossible_rate_expiry_or_campaign_are_refused_with_every_reason() -> None:
    settings = ShopPointsSettings(
        rate_percent=120,
        expiry_months=0,
        campaigns=(Campaign(multiplier=0, starts_on=date(2025, 3, 2), ends_on=date(2025, 3, 1), skus=frozenset()),),
    )
    reasons = validate_settings(settings)
    assert len(reasons) == 5
    assert validate_settings(ShopPointsSettings()) == []


def test_by_default_either_payment_event_confirms_and_manual_shops_confirm_only_by_staff() -> None:
    assert ShopPointsSettings().confirms_on("captured") and ShopPointsSettings().confirms_on("received")
    assert not ShopPointsSettings(confirm_on="captured").confirms_on("received")
    assert not ShopPointsSettings(confirm_on="manual").confirms_on("captured")
