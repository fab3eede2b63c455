"""A shop's shipping settings from a SetShopShipping command: every reason it is refused, or the columns to set."""

from datetime import date, time
from functools import lru_cache
from zoneinfo import available_timezones

WEEKDAYS = range(7)


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def settings_problems(
    *, time_zone: str | None, closed_weekdays: list[int] | None, current_closed_weekdays: frozenset[int]
) -> list[str]:
    """Every reason the settings can't be taken: an unknown IANA time zone, a weekday outside 0–6 (Monday = 0),
    or every weekday closed (counting the current closed weekdays when the command leaves them out)."""
    problems = []
    if time_zone is not None and time_zone not in _time_zones():
        problems.append(f"unknown time zone {time_zone!r} (an IANA name such as Asia/Tokyo)")
    if closed_weekdays is not None:
        outside = sorted({day for day in closed_weekdays if day not in WEEKDAYS})
        if outside:
            problems.append(f"weekdays {outside} are outside 0..6 (Monday = 0)")
    closed = set(current_closed_weekdays if closed_weekdays is None else closed_weekdays)
    if set(WEEKDAYS) <= closed:
        problems.append("every weekday is closed: the shop would never ship")
    return problems


def settings_columns(
    *,
    time_zone: str | None,
    cutoff: str | None,
    closed_weekdays: list[int] | None,
    closures: list[date] | None,
    warehouse_prefecture: str | None,
    shipper_json: str | None,
) -> dict[str, object]:
    """The shop columns the command sets; fields it leaves out are absent (they keep their value)."""
    columns: dict[str, object] = {}
    if time_zone is not None:
        columns["time_zone"] = time_zone
    if cutoff is not None:
        hours, minutes = cutoff.split(":")
        columns["cutoff"] = time(int(hours), int(minutes))
    if closed_weekdays is not None:
        columns["closed_weekdays"] = sorted(set(closed_weekdays))
    if closures is not None:
        columns["closures"] = sorted(set(closures))
    if warehouse_prefecture is not None:
        columns["warehouse_prefecture"] = warehouse_prefecture
    if shipper_json is not None:
        columns["shipper"] = shipper_json
    return columns
