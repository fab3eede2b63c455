"""The CLI's date and time options: every documented format is read, anything else is refused with the formats."""

from datetime import date, datetime, timedelta, timezone

import pytest
import typer

from ordermesh_ops.when import SHOP_TIMEZONE, day, moment

UTC_MOMENT = datetime(2026, 12, 2, 2, 2, 58, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-02T02:02:58+00:00", UTC_MOMENT),
        ("2026-12-02T11:02:58+09:00", UTC_MOMENT),
        ("2026-12-02T02:02:58Z", UTC_MOMENT),
        ("2026-12-02T02:02:58.000+00:00", UTC_MOMENT),
        ("2026-12-02T11:02+09:00", UTC_MOMENT - timedelta(seconds=58)),
        (" 2026-12-02T02:02:58Z ", UTC_MOMENT),
        ("2026-12-02", datetime(2026, 12, 2, tzinfo=SHOP_TIMEZONE)),
    ],
)
def test_a_time_option_takes_iso_8601_with_an_offset_or_a_plain_date(text, expected):
    parsed = moment(text)
    assert parsed == expected and parsed.tzinfo is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-02", date(2026, 12, 2)),
        ("2026-12-02T11:02:58+09:00", date(2026, 12, 2)),
        ("2026-12-01T16:00:00Z", date(2026, 12, 2)),  # already the 2nd in Japan
        ("2026-12-01T14:59:59+00:00", date(2026, 12, 1)),
    ],
)
def test_a_day_option_takes_a_plain_date_or_a_time_with_an_offset_as_its_day_in_japan(text, expected):
    assert day(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-12-02T02:02:58", "has no offset"),
        ("2026-12-02 02:02:58", "has no offset"),
        ("02/12/2026", "is not an ISO 8601 time"),
        ("2026-13-40", "is not an ISO 8601 time"),
        ("yesterday", "is not an ISO 8601 time"),
        ("2026-12-02\x00", "is not an ISO 8601 time"),
        ("", "is not an ISO 8601 time"),
    ],
)
def test_anything_else_is_refused_naming_the_formats(text, reason):
    for parse in (moment, day):
        with pytest.raises(typer.BadParameter) as refused:
            parse(text)
        assert reason in str(refused.value)
