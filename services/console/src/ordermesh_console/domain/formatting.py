"""How the console shows money and times: yen without decimals, other currencies by their minor units, Tokyo time."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

_MINOR_DIGITS = {"JPY": 0, "KRW": 0, "USD": 2, "EUR": 2, "GBP": 2}
_SYMBOL = {"JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£"}


def money(amount: int | None, currency: str | None = "JPY") -> str:
    """`¥12,800` for 12800 JPY; `$12.50` for 1250 USD; an unknown currency is shown with its code."""
    if amount is None:
        return ""
    currency = (currency or "JPY").upper()
    digits = _MINOR_DIGITS.get(currency, 2)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(int(amount)), 10**digits)
    number = f"{whole:,}" + (f".{fraction:0{digits}d}" if digits else "")
    symbol = _SYMBOL.get(currency)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency}"


def parse_instant(value: str | datetime | None) -> datetime | None:
    """A timestamp from a service's JSON (ISO 8601; PostgreSQL's `2026-03-01 14:30:00+00:00` too)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def local_time(value: str | datetime | None, zone: str = "Asia/Tokyo", *, seconds: bool = False) -> str:
    """`2026/03/01 23:30` in the given zone; naive times are taken as UTC; unreadable values are shown as they are."""
    instant = parse_instant(value)
    if instant is None:
        return "" if value is None else str(value)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=ZoneInfo("UTC"))
    return instant.astimezone(ZoneInfo(zone)).strftime("%Y/%m/%d %H:%M:%S" if seconds else "%Y/%m/%d %H:%M")


def local_day(value: str | date | None) -> str:
    """`2026/03/01` for a calendar day."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return value
    return value.strftime("%Y/%m/%d")
