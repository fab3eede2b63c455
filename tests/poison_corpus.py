"""Malformed Kafka records of every kind a clumsy upstream or an attacker sends, built around a valid message.

Each `Poison` is invalid for any consumer of the topic it is built for: broken bytes, broken JSON,
JSON no contract accepts, or a contract message with a field no contract allows.
"""

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parent.parent / "contracts" / "tests" / "golden"
ENVELOPE = frozenset({"event_id", "type", "schema_version", "occurred_at", "correlation_id", "causation_id"})


@dataclass(frozen=True)
class Poison:
    """One malformed record: its value (None for a tombstone) and headers (values may be None)."""

    kind: str
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


def golden(message_type: str) -> dict[str, Any]:
    """The golden (valid) JSON of a contract."""
    return json.loads((GOLDEN / f"{message_type}.json").read_text(encoding="utf-8"))


def _dumps(raw: Any) -> bytes:
    return json.dumps(raw, ensure_ascii=False).encode()


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _with(valid: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> bytes:
    raw = copy.deepcopy(valid)
    change(raw)
    return _dumps(raw)


def _negative_numbers(raw: dict[str, Any]) -> None:
    raw["schema_version"] = -1
    for key, value in raw.items():
        if isinstance(value, int) and not isinstance(value, bool):
            raw[key] = -value - 1


def poison_corpus(message_type: str, *, strict: bool) -> list[Poison]:
    """Every kind of malformed record, built around the golden `message_type` (a contract of the topic).

    `strict`: the topic's contracts refuse unknown fields (shop orders, staff commands), so an unknown
    field is poison too; between services it is not (tolerant reader).
    """
    valid = golden(message_type)
    envelope_only = {k: v for k, v in valid.items() if k in ENVELOPE}
    text = json.dumps(valid)
    poisons = [
        Poison("not JSON", b"{this is not json"),
        Poison("invalid UTF-8", b'{"type": "\xff\xfe"}'),
        Poison("binary junk", bytes(range(256))),
        Poison("empty value", b""),
        Poison("null value (tombstone)", None),
        Poison("UTF-8 BOM before JSON", b"\xef\xbb\xbf" + text.encode()),
        Poison("trailing garbage after JSON", text.encode() + b" {}"),
        Poison("10k-deep nesting", f'{{"type": "{message_type}", "deep": {_nested(10_000)}}}'.encode()),
        Poison("100-deep nesting", f'{{"type": "{message_type}", "deep": {_nested(100)}}}'.encode()),
        Poison("5,000-digit integer", text.replace('"schema_version": 1', '"schema_version": ' + "9" * 5000).encode()),
        Poison("30-digit integer", text.replace('"schema_version": 1', '"schema_version": ' + "9" * 30).encode()),
        Poison("huge float 1e400", text.replace('"schema_version": 1', '"schema_version": 1e400').encode()),
        Poison("NaN literal", text.replace('"schema_version": 1', '"schema_version": NaN').encode()),
        Poison("NUL in a string", _with(valid, lambda r: r.update(event_id="0a1b2c3d\u0000"))),
        Poison("lone surrogate escaped in JSON", text.replace(f'"type": "{message_type}"', f'"type": "{message_type}", "note": "\\ud800"').encode()),
        Poison("lone surrogate as the type", text.replace(f'"type": "{message_type}"', '"type": "\\udfff"').encode()),
        Poison("JSON array", _dumps([valid])),
        Poison("JSON number", b"42"),
        Poison("JSON string", b'"OrderAccepted"'),
        Poison("JSON null", b"null"),
        Poison("JSON true", b"true"),
        Poison("missing type", _with(valid, lambda r: r.pop("type"))),
        Poison("type not a string", _with(valid, lambda r: r.update(type=42))),
        Poison("type null", _with(valid, lambda r: r.update(type=None))),
        Poison("type an array", _with(valid, lambda r: r.update(type=[message_type]))),
        Poison("unknown type", _with(valid, lambda r: r.update(type="OrderTeleported"))),
        Poison("type in the wrong case", _with(valid, lambda r: r.update(type=message_type.lower()))),
        Poison("wrong schema_version", _with(valid, lambda r: r.update(schema_version=0))),
        Poison("schema_version a string", _with(valid, lambda r: r.update(schema_version="one"))),
        Poison("event_id of the wrong type", _with(valid, lambda r: r.update(event_id=12))),
        Poison("occurred_at not a date", _with(valid, lambda r: r.update(occurred_at="yesterday"))),
        Poison("occurred_at without a time zone", _with(valid, lambda r: r.update(occurred_at="2025-03-12T01:15:08"))),
        Poison("correlation_id null", _with(valid, lambda r: r.update(correlation_id=None))),
        Poison("required fields missing", _dumps(envelope_only)),
        Poison("negative numbers", _with(valid, _negative_numbers)),
        Poison("1 MB string", _with(valid, lambda r: r.update(causation_id="x" * 1_000_000))),
        Poison(
            "NUL bytes, nulls and non-UTF-8 in header values",
            _with(valid, lambda r: r.update(schema_version=0)),
            [("type", b"Order\x00Accepted"), ("traceparent", None), ("x-shop", b"\xff\xfe\x00\x80"), ("empty", b"")],
        ),
        Poison("null header values", _with(valid, lambda r: r.update(event_id="not-a-uuid")), [("type", None), ("schema_version", None)]),
    ]
    if strict:
        poisons.append(Poison("unknown field from a shop or staff", _with(valid, lambda r: r.update(gift_wrapping=True))))
    return poisons
