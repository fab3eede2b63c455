"""Log redaction: personal data never reaches a log line, and the JSON logs stay useful."""

import json
import logging
from pathlib import Path

import pytest
import structlog

from ordermesh_servicekit.logging import REDACTED, configure_logging, redact, redact_text

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail to hanako.yamada@example.jp failed", f"mail to {REDACTED} failed"),
        ("SMTP 550 <ichiro+shop@mail.example.co.jp>: no such user", f"SMTP 550 <{REDACTED}>: no such user"),
        ("call 090-1234-5678 before delivery", f"call {REDACTED} before delivery"),
        ("call +81 90 1234 5678", f"call {REDACTED}"),
        ("fax 0751234567", f"fax {REDACTED}"),
        (
            "cannot connect to postgresql://orders:s3cret@db:5432/orders",
            f"cannot connect to postgresql://orders:{REDACTED}@db:5432/orders",
        ),
    ],
)
def test_redact_text_masks_emails_phone_numbers_and_dsn_passwords(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order RK-20250312-000481 accepted",
        "total 9660 JPY, 2 lines",
        "shipment 5d2e8f41-0c6b-5a7e-9b3d-1f4a6c8e2b70 requested",
        "postgresql://db:5432/orders",
        "at 2025-03-12T10:14:55+09:00",
        "tracking number 4829-1734-6502",
        "event 00000000-0000-4000-8000-000000000002",
        "postal code 150-0041",
    ],
)
def test_redact_text_leaves_text_without_personal_data_alone(text: str) -> None:
    assert redact_text(text) == text


def test_redact_masks_personal_keys_at_any_depth_and_keeps_everything_else() -> None:
    event = json.loads((DATA / "log_event.json").read_text(encoding="utf-8"))
    assert redact(event) == {
        "event": "order accepted",
        "order_id": "8e0f4c3b-2a1d-5e6f-9a8b-7c6d5e4f3a2b",
        "shop_id": "kyoto-tea",
        "customer": REDACTED,
        "deliveries": [
            {
                "address": REDACTED,
                "lines": [{"sku": "MATCHA-UJI-40G", "quantity": 2}],
            },
            {"Phone": REDACTED, "carrier": "yamato", "note": f"contact {REDACTED} or {REDACTED}"},
        ],
        "Email": REDACTED,
        "card_token": REDACTED,
        "database_url": REDACTED,
        "total": 9660,
        "tags": ["gift", "rush"],
    }


def test_redact_does_not_change_its_input() -> None:
    event = json.loads((DATA / "log_event.json").read_text(encoding="utf-8"))
    before = json.dumps(event, sort_keys=True)
    redact(event)
    assert json.dumps(event, sort_keys=True) == before


def test_redact_masks_personal_values_inside_tuples_and_leaves_non_strings_alone() -> None:
    assert redact(("hanako.yamada@example.jp", 3, None, 1.5)) == [REDACTED, 3, None, 1.5]


def test_configured_logs_are_one_json_object_per_line_without_personal_values(capsys, restore_logging) -> None:
    log = configure_logging("orders")
    log.info(
        "mail queued",
        email="hanako.yamada@example.jp",
        name="山田 花子",
        order_id="8e0f4c3b-2a1d-5e6f-9a8b-7c6d5e4f3a2b",
        note="ask 090-1234-5678",
    )
    out = capsys.readouterr().out
    assert "hanako.yamada@example.jp" not in out
    assert "山田" not in out and "\\u5c71\\u7530" not in out
    assert "090-1234-5678" not in out
    [line] = out.strip().splitlines()
    entry = json.loads(line)
    assert entry["event"] == "mail queued"
    assert entry["service"] == "orders"
    assert entry["level"] == "info"
    assert entry["email"] == REDACTED
    assert entry["name"] == REDACTED
    assert entry["note"] == f"ask {REDACTED}"
    assert entry["order_id"] == "8e0f4c3b-2a1d-5e6f-9a8b-7c6d5e4f3a2b"
    assert entry["timestamp"].startswith("20") and "T" in entry["timestamp"]
    assert REDACTED not in entry["timestamp"]


def test_stdlib_log_records_are_rendered_as_redacted_json_too(capsys, restore_logging) -> None:
    configure_logging("orders")
    logging.getLogger("asyncpg.pool").warning("connection to postgresql://orders:s3cret@db/orders lost")
    entry = json.loads(capsys.readouterr().out.strip())
    assert entry["event"] == f"connection to postgresql://orders:{REDACTED}@db/orders lost"
    assert entry["level"] == "warning"
    assert entry["service"] == "orders"


def test_bound_personal_context_is_redacted_as_well(capsys, restore_logging) -> None:
    log = configure_logging("notify")
    with structlog.contextvars.bound_contextvars(recipient="hanako.yamada@example.jp", topic="orders.events.v1"):
        log.info("sending")
    entry = json.loads(capsys.readouterr().out.strip())
    assert entry["recipient"] == REDACTED
    assert entry["topic"] == "orders.events.v1"


def test_an_exception_message_with_an_email_is_redacted_in_the_traceback(capsys, restore_logging) -> None:
    log = configure_logging("notify")
    try:
        raise ValueError("mailbox hanako.yamada@example.jp is full")
    except ValueError:
        log.exception("send failed")
    out = capsys.readouterr().out
    assert "hanako.yamada@example.jp" not in out
    assert "ValueError" in json.loads(out.strip())["exception"]


def test_a_line_below_the_configured_level_is_dropped_before_its_fields_are_processed(capsys, restore_logging, monkeypatch) -> None:
    import ordermesh_servicekit.logging as kit_logging

    processed: list[str] = []

    def counting(logger, method, event):
        processed.append(event["event"])
        return event

    monkeypatch.setattr(kit_logging, "_redact_processor", counting)
    log = configure_logging("orders", level="WARNING")
    log.info("message handled", outcome="processed")
    log.warning("dead-lettered", reason="x")
    assert processed == ["dead-lettered"]
    [line] = capsys.readouterr().out.strip().splitlines()
    assert json.loads(line)["event"] == "dead-lettered"
