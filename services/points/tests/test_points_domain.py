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
