"""Pure helpers of the staff CLI: durations and times staff type, lag summaries, which groups are the services'."""

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from ordermesh_ops.lag import is_service_group, summarize
from ordermesh_ops.timespec import parse_duration, parse_since
from ordermesh_servicekit.lag import PartitionLag


def test_durations_take_seconds_minutes_hours_and_days_and_refuse_anything_else():
    assert parse_duration("30m") == timedelta(minutes=30) and parse_duration(" 2h ") == timedelta(hours=2)
    assert parse_duration("1d") == timedelta(days=1) and parse_duration("90s") == timedelta(seconds=90)
    for bad in ("", "30", "m", "-5m", "1.5h", "30 minutes", "9" * 400 + "x", "3\x00m"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_since_is_a_duration_back_from_now_or_an_iso_time_in_utc_when_it_has_no_zone():
    now = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
    assert parse_since("2h", now) == datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
    assert parse_since("2026-12-01T09:00:00", now) == datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    assert parse_since("2026-12-01T09:00:00+09:00", now).utcoffset() == timedelta(hours=9)
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("yesterday", now)


def test_lag_is_summed_per_group_and_topic_with_the_worst_partition_and_a_group_with_no_commit_lags_everything():
    rows = [
        PartitionLag("ordermesh-orders", "payments.events.v1", 0, 10, 15),
        PartitionLag("ordermesh-orders", "payments.events.v1", 1, None, 7),
        PartitionLag("ordermesh-notify", "payments.events.v1", 0, 15, 15),
    ]
    assert [r.lag for r in rows] == [5, 7, 0]
    assert summarize(rows) == [
        {"group": "ordermesh-orders", "topic": "payments.events.v1", "lag": 12, "worst_partition": 1, "worst_lag": 7},
        {"group": "ordermesh-notify", "topic": "payments.events.v1", "lag": 0, "worst_partition": 0, "worst_lag": 0},
    ]


def test_only_the_services_groups_count_for_lag_not_cli_or_demo_groups():
    assert is_service_group("ordermesh-payments")
    assert not is_service_group("ordermesh-cli-1a2b3c4d") and not is_service_group("ordermesh-demo-watcher-9f")
    assert not is_service_group("test-recorder-123")


def test_a_dead_letter_nested_too_deep_to_read_lists_without_a_body_instead_of_failing():
    from ordermesh_ops.deadletters import DeadLetter

    letter = DeadLetter(
        id="shop.orders.v1.dlq:0:1", original_topic="shop.orders.v1", original_partition=0, original_offset=1,
        consumer_group="ordermesh-orders", error_class="TooDeep", reason="nested too deep", failed_at=None,
        key=None, value=b"[" * 100_000 + b"]" * 100_000,
    )
    assert letter.body is None
    assert letter.summary()["error_class"] == "TooDeep"


def test_rows_with_a_lone_surrogate_print_as_json_that_reads_back_to_the_same_text_and_as_a_table():
    program = (
        "import sys\n"
        "from ordermesh_ops import output\n"
        "output.write_what_cannot_be_encoded_escaped()\n"
        "rows = [{'reason': 'bad \\udfff byte', 'name': '山田 太郎'}]\n"
        "output.print_rows(rows, as_json=True)\n"
        "print('---', flush=True)\n"
        "output.print_rows(rows, title='letters')\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    as_json, table = done.stdout.decode().split("---\n")
    assert json.loads(as_json) == [{"reason": "bad \udfff byte", "name": "山田 太郎"}]
    assert "bad \\udfff byte" in table and "山田 太郎" in table
