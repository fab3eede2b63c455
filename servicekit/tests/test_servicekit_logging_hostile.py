"""Log redaction against hostile values and every personal key the suite could log: a log call never fails, always
renders one JSON line, and no name, mail address, phone, postal address, free text of a customer or secret gets out.
The audit test reads the suite's log calls and checks that each key naming personal data is on the redaction list."""

import ast
import json
import logging
import re
from pathlib import Path

import pytest
import structlog
from pydantic import BaseModel

from ordermesh_servicekit.logging import REDACTED, configure_logging, is_personal_key, redact

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "hanako.yamada@example.jp"
PHONE = "090-1234-5678"
NAME = "山田 花子"
STREET = "神南1-2-3"

HOSTILE_VALUES = [
    EMAIL,
    f"{NAME}\x00{STREET}",
    f"{NAME}\ud800{STREET}",
    {"nested": {"deeper": [NAME, STREET]}},
    f"{NAME} {STREET}".encode(),
    10**5000,
]
"""Values a personal key may carry: text with NUL bytes or a lone surrogate, nesting, bytes, a huge number."""

PERSONAL_KEY_SPELLINGS = [
    "to", "To", "cc", "bcc", "reply-to", "recipient", "recipients", "rcpt",
    "name", "first_name", "last_name", "full_name", "customer_name", "recipient_name", "kana", "company", "customer",
    "email", "Email", "contact_email", "customer_email", "phone", "customer_phone", "tel", "mobile", "fax",
    "address", "address1", "address2", "billing_address", "shipping_address", "delivery_address",
    "postal_code", "postcode", "zip", "zip_code", "line1", "line2", "street", "city", "prefecture", "province",
    "ip_address", "browser_ip", "remarks", "note_to_seller", "birthday",
    "card_token", "card_number", "cvc", "api_key", "stripe_secret", "password", "authorization", "cookie", "dsn",
]


@pytest.fixture
def log_line(capsys):
    """Reads the one line a log call printed (JSON logging is configured by `_logger` inside the test, where
    capsys sees it), and restores logging afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def read() -> dict:
        [line] = capsys.readouterr().out.strip().splitlines()
        return json.loads(line)

    yield read
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def _logger(name: str):
    configure_logging("notify")
    return structlog.get_logger(name)


def _leaks(line: dict) -> list[str]:
    text = json.dumps(line, ensure_ascii=False)
    return [p for p in (EMAIL, PHONE, NAME, STREET, "山田") if p in text]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=["e-mail", "NUL", "lone surrogate", "nesting", "bytes", "huge number"])
def test_every_personal_key_is_redacted_whatever_its_value(value, log_line) -> None:
    _logger("mailer").info("outside call", target="smtp", **{key: value for key in PERSONAL_KEY_SPELLINGS})
    line = log_line()
    assert [key for key in PERSONAL_KEY_SPELLINGS if line[key] != REDACTED] == []
    assert line["target"] == "smtp"


def test_personal_keys_bound_to_the_context_are_redacted(log_line) -> None:
    log = _logger("mailer")
    with structlog.contextvars.bound_contextvars(**{key: EMAIL for key in PERSONAL_KEY_SPELLINGS}):
        log.info("sending")
    line = log_line()
    assert [key for key in PERSONAL_KEY_SPELLINGS if line[key] != REDACTED] == []


class _Customer(BaseModel):
    customer_id: str
    name: str
    email: str


class _Cyclic:
    def __str__(self) -> str:
        return f"contact {EMAIL} or {PHONE}"


def _deep(levels: int) -> dict:
    value: dict = {"name": NAME}
    for _ in range(levels):
        value = {"inner": value}
    return value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(_deep(5000), id="nesting 5000 deep"),
        pytest.param(_Customer(customer_id="C-1", name=NAME, email=EMAIL), id="a pydantic model"),
        pytest.param(_Cyclic(), id="an object whose text has contact data"),
        pytest.param({EMAIL: 1, "note": f"call {PHONE}"}, id="contact data in a mapping's keys"),
        pytest.param(f"{EMAIL}\x00\ud800".encode("utf-8", "surrogatepass"), id="bytes with NUL and a surrogate"),
        pytest.param(float("nan"), id="not a number"),
        pytest.param(-(10**5000), id="a huge negative number"),
    ],
)
def test_hostile_values_under_ordinary_keys_render_one_json_line_without_personal_data(value, log_line) -> None:
    _logger("order_story").info("order changed", what="edited", details=value)
    line = log_line()
    assert line["event"] == "order changed" and line["what"] == "edited"
    assert not _leaks(line), f"leaked {_leaks(line)}"


def test_a_cyclic_value_is_cut_off_instead_of_breaking_the_log_call(log_line) -> None:
    cyclic: list = [NAME]
    cyclic.append(cyclic)
    _logger("order_story").info("order changed", details={"customer": NAME, "lines": cyclic})
    line = log_line()
    assert line["details"]["customer"] == REDACTED
    assert "[too deep]" in json.dumps(line)


def test_stage_transitions_and_ids_are_not_taken_for_personal_data() -> None:
    kept = {"from_stage": "review", "to_stage": "awaiting_payment", "order_id": "o-1", "shop_order_no": "RK-1",
            "target": "smtp", "outcome": "sent", "payment_method": "card", "actor": "staff:hanako", "carrier": "yamato"}
    assert redact(kept) == kept


_LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "bind", "bind_contextvars", "bound_contextvars"}
_LOOKS_PERSONAL = re.compile(r"name|mail|phone|tel$|address|zip|postal|post_?code|customer|recipient|^to$|^cc$|remark|street|city|prefecture|token|secret|password|card")
_NOT_PERSONAL = {"customer_id", "mail_id", "mail_kind", "mails", "username"}
"""Keys that look personal and are not: ids, mail kinds and counts, and staff account names (logged on purpose as the
actor of staff actions)."""


def _logged_keys() -> set[tuple[str, str]]:
    found = set()
    for source in [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("servicekit/src/**/*.py"), *ROOT.glob("ops/src/**/*.py")]:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _LOG_METHODS:
                found |= {(kw.arg, str(source.relative_to(ROOT))) for kw in node.keywords if kw.arg}
    return found


def test_every_key_the_suite_logs_that_names_personal_data_is_redacted() -> None:
    keys = _logged_keys()
    assert ("actor", "servicekit/src/ordermesh_servicekit/consuming.py") in keys or any(k == "actor" for k, _ in keys)
    unredacted = sorted(
        (key, where) for key, where in keys
        if _LOOKS_PERSONAL.search(key.lower()) and key not in _NOT_PERSONAL and not is_personal_key(key)
    )
    assert unredacted == []
