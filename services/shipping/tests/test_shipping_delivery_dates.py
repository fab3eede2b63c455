"""Delivery-date feasibility without I/O: cutoff in the shop's time zone, holidays, closures, lead days, islands."""

from datetime import date, datetime, time, timezone

from ordermesh_shipping.domain.delivery_dates import (
    ShopCalendar,
    check_order_dates,
    earliest_ship_date,
)
from ordermesh_shipping.domain.regions import lead_days, remote_island

TOKYO = ShopCalendar()


def utc(y, m, d, hh, mm) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=timezone.utc)


def test_an_order_before_the_cutoff_on_a_working_day_ships_the_same_day() -> None:
    assert earliest_ship_date(TOKYO, utc(2025, 3, 18, 5, 59)) == date(2025, 3, 18)  # 14:59 JST, Tuesday


def test_an_order_at_or_after_the_cutoff_ships_the_next_working_day() -> None:
    assert earliest_ship_date(TOKYO, utc(2025, 3, 18, 6, 0)) == date(2025, 3, 19)  # 15:00 JST


def test_the_cutoff_is_read_in_the_shops_time_zone_not_utc() -> None:
    # 23:30 UTC on the 17th is 08:30 JST on the 18th: before the cutoff of the 18th.
    assert earliest_ship_date(TOKYO, utc(2025, 3, 17, 23, 30)) == date(2025, 3, 18)


def test_a_public_holiday_is_skipped() -> None:
    # Wednesday 2025-03-19 after cutoff; Thursday the 20th is Vernal Equinox Day.
    assert earliest_ship_date(TOKYO, utc(2025, 3, 19, 7, 0)) == date(2025, 3, 21)


def test_golden_week_holidays_and_the_weekend_are_skipped_together() -> None:
    # Friday 2025-05-02 after cutoff; 3-6 May are weekend, holidays and a substitute holiday.
    assert earliest_ship_date(TOKYO, utc(2025, 5, 2, 8, 0)) == date(2025, 5, 7)


def test_shop_closures_are_skipped_like_holidays() -> None:
    closed = ShopCalendar(closures=frozenset({date(2025, 3, 21)}))
    assert earliest_ship_date(closed, utc(2025, 3, 19, 7, 0)) == date(2025, 3, 24)


def test_a_later_cutoff_lets_the_same_order_ship_the_same_day() -> None:
    late = ShopCalendar(cutoff=time(18, 0))
    assert earliest_ship_date(late, utc(2025, 3, 18, 6, 30)) == date(2025, 3, 18)


def test_lead_days_are_one_within_a_region_two_to_a_neighbour_and_three_further() -> None:
    assert lead_days("東京都", "神奈川県") == 1
    assert lead_days("東京都", "大阪府") == 2
    assert lead_days("東京都", "福岡県") == 3
    assert lead_days("東京都", "北海道") == 3
    assert lead_days("東京都", "沖縄県") == 3
    assert lead_days("東京都", "Atlantis") is None


def test_remote_islands_are_found_by_the_longest_postal_code_prefix() -> None:
    assert remote_island("100-2101") == ("Ogasawara islands", 6)
    assert remote_island("100-0001") is None


def test_a_requested_date_before_the_earliest_delivery_date_is_an_error_naming_the_earliest_date() -> None:
    check = check_order_dates(TOKYO, utc(2025, 3, 18, 6, 30), [("東京都", "100-0001", date(2025, 3, 19))])
    assert not check.ok
    assert check.earliest_ship_date == date(2025, 3, 19)
    assert check.earliest_delivery_date == date(2025, 3, 20)
    assert "2025-03-20" in check.reasons[0]


def test_the_earliest_possible_date_itself_is_ok() -> None:
    check = check_order_dates(TOKYO, utc(2025, 3, 18, 6, 30), [("東京都", "100-0001", date(2025, 3, 20))])
    assert check.ok and check.reasons == []


def test_no_requested_date_is_always_ok() -> None:
    assert check_order_dates(TOKYO, utc(2025, 3, 18, 6, 30), [("沖縄県", "900-0001", None)]).ok


def test_a_remote_island_adds_its_extra_days() -> None:
    check = check_order_dates(TOKYO, utc(2025, 3, 18, 5, 0), [("東京都", "100-2101", date(2025, 3, 20))])
    assert check.earliest_delivery_date == date(2025, 3, 25)  # ships the 18th, 1 day + 6 island days
    assert not check.ok


def test_the_order_is_in_error_when_any_delivery_group_is_and_reports_the_latest_earliest_date() -> None:
    check = check_order_dates(
        TOKYO, utc(2025, 3, 18, 5, 0), [("東京都", "100-0001", None), ("福岡県", "810-0001", date(2025, 3, 19))]
    )
    assert not check.ok
    assert [d.ok for d in check.deliveries] == [True, False]
    assert check.earliest_delivery_date == date(2025, 3, 21)
