"""Delivery-date feasibility: earliest ship date from the shop's working calendar and cutoff, earliest delivery date from lead days."""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from .regions import lead_days, remote_island

DEFAULT_TIME_ZONE = "Asia/Tokyo"
DEFAULT_CUTOFF = time(15, 0)
DEFAULT_WAREHOUSE_PREFECTURE = "東京都"
UNKNOWN_PREFECTURE_LEAD_DAYS = 3


@lru_cache(maxsize=64)
def _public_holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year))


@dataclass(frozen=True)
class ShopCalendar:
    """When a shop ships: its time zone, same-day cutoff, closed weekdays, public holidays and closures."""

    time_zone: str = DEFAULT_TIME_ZONE
    cutoff: time = DEFAULT_CUTOFF
    closed_weekdays: frozenset[int] = frozenset({5, 6})
    closures: frozenset[date] = frozenset()
    holiday_country: str = "JP"
    warehouse_prefecture: str = DEFAULT_WAREHOUSE_PREFECTURE

    def as_settings(self) -> dict:
        """The calendar in the shape SetShopShipping takes it (JSON values)."""
        return {
            "time_zone": self.time_zone,
            "cutoff": self.cutoff.strftime("%H:%M"),
            "closed_weekdays": sorted(self.closed_weekdays),
            "closures": [day.isoformat() for day in sorted(self.closures)],
            "warehouse_prefecture": self.warehouse_prefecture,
        }

    def is_working_day(self, day: date) -> bool:
        """Whether the shop ships on `day`."""
        return (
            day.weekday() not in self.closed_weekdays
            and day not in _public_holidays(self.holiday_country, day.year)
            and day not in self.closures
        )


@dataclass(frozen=True)
class DeliveryCheck:
    """The outcome for one delivery group."""

    delivery_index: int
    requested_date: date | None
    earliest_ship_date: date
    earliest_delivery_date: date
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the requested date (if any) can be met."""
        return not self.reasons


def earliest_ship_date(calendar: ShopCalendar, now: datetime) -> date:
    """The first working day the order can leave: today if before the cutoff on a working day, else the next one."""
    local = now.astimezone(ZoneInfo(calendar.time_zone))
    day = local.date()
    if not (calendar.is_working_day(day) and local.time() < calendar.cutoff):
        day += timedelta(days=1)
    for _ in range(366):
        if calendar.is_working_day(day):
            return day
        day += timedelta(days=1)
    raise ValueError("the shop has no working day within a year")


def transit_days(calendar: ShopCalendar, prefecture: str, postal_code: str) -> tuple[int, list[str]]:
    """Days from the warehouse to the address, and notes on how they were found."""
    notes = []
    days = lead_days(calendar.warehouse_prefecture, prefecture)
    if days is None:
        days = UNKNOWN_PREFECTURE_LEAD_DAYS
        notes.append(f"unknown prefecture, assumed {days} days")
    island = remote_island(postal_code)
    if island:
        area, extra = island
        days += extra
        notes.append(f"remote island ({area}): +{extra} days")
    return days, notes


def check_delivery(
    calendar: ShopCalendar,
    now: datetime,
    delivery_index: int,
    prefecture: str,
    postal_code: str,
    requested_date: date | None,
) -> DeliveryCheck:
    """Whether a delivery group's requested date can be met; no requested date is always ok."""
    ship = earliest_ship_date(calendar, now)
    days, _notes = transit_days(calendar, prefecture, postal_code)
    earliest = ship + timedelta(days=days)
    reasons = []
    if requested_date is not None and requested_date < earliest:
        reasons.append(
            f"delivery {delivery_index}: requested {requested_date.isoformat()} is before the earliest possible "
            f"{earliest.isoformat()} (ships {ship.isoformat()}, {days} days in transit)"
        )
    return DeliveryCheck(delivery_index, requested_date, ship, earliest, reasons)


@dataclass(frozen=True)
class OrderDateCheck:
    """The delivery-date check of a whole order: ok or error, the earliest dates, and every reason."""

    ok: bool
    earliest_ship_date: date
    earliest_delivery_date: date
    reasons: list[str]
    deliveries: list[DeliveryCheck]


def check_order_dates(
    calendar: ShopCalendar,
    now: datetime,
    groups: list[tuple[str, str, date | None]],
    *,
    indices: list[int] | None = None,
) -> OrderDateCheck:
    """Checks each delivery group (prefecture, postal code, requested date); the order is ok when every group is.

    `indices` numbers the groups when only some of the order's are checked (after an edit, the unshipped ones).
    """
    numbers = indices if indices is not None else list(range(len(groups)))
    checks = [check_delivery(calendar, now, index, *group) for index, group in zip(numbers, groups, strict=True)]
    return OrderDateCheck(
        ok=all(check.ok for check in checks),
        earliest_ship_date=min(check.earliest_ship_date for check in checks),
        earliest_delivery_date=max(check.earliest_delivery_date for check in checks),
        reasons=[reason for check in checks for reason in check.reasons],
        deliveries=checks,
    )
