"""How staff write times and days on the command line: ISO 8601 with an offset, or a plain date.

Every date or time option of the CLI goes through these two parsers, so each takes the same formats:

- `2026-12-02T11:02:58+09:00`, `2026-12-02T02:02:58+00:00`, `2026-12-02T02:02:58Z`, `2026-12-02T11:02+09:00`
  (ISO 8601 with an offset; fractions of a second allowed)
- `2026-12-02` (a plain date: the day in the shop's time zone, Asia/Tokyo; as a time, the start of that day)

A time without an offset is refused: it would mean a different moment on every machine.
"""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import typer

SHOP_TIMEZONE = ZoneInfo("Asia/Tokyo")
FORMATS = "an ISO 8601 time with an offset (2026-12-02T11:02:58+09:00, 2026-12-02T02:02:58Z) or a date (2026-12-02)"


def moment(text: str) -> datetime:
    """A point in time: an ISO 8601 time with its offset, or a plain date (the start of that day in Japan)."""
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), SHOP_TIMEZONE)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not {FORMATS}") from None
    if parsed.tzinfo is None:
        raise typer.BadParameter(f"{text!r} has no offset: add one (+09:00 for Japan, Z for UTC), or give a date")
    return parsed


def day(text: str) -> date:
    """A calendar day: a plain date, or an ISO 8601 time with its offset (the day it is in Japan then)."""
    text = text.strip()
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not {FORMATS}") from None
    return moment(text).astimezone(SHOP_TIMEZONE).date()
