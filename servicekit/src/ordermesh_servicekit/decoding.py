"""Turning a Kafka record's bytes into a contract message, or into the reason it can never be one."""

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

MAX_DEPTH = 64
"""Deepest nesting of objects and arrays a message may have; no contract comes near it."""

_INT64 = 2**63 - 1

# The fast path's scans see bytes by class (translate and `in` run in C; a regular expression took as long as pydantic).
_SHAPE = bytes(ord("0") if byte in b"0123456789" else ord("[") if byte in b"{[" else ord("x") for byte in range(256))
"""Digits as 0 (19 in a row may be an integer beyond 64 bits) and opening brackets as [ (their count bounds depth)."""
_LONG_DIGITS = b"0" * 19
_VALUE_STARTS = bytes(ord(":") if byte in b":,[" else ord("e") if byte in b"eENI" else ord("x") for byte in range(256))
_NUMBER_BODY = b" \t\n\r0123456789.+-"
"""Dropped with whitespace, a number's digits, signs and point leave `:e` wherever a value is a number with an exponent
(it may overflow to infinity), NaN or Infinity. Dropping bytes only brings others together, so it finds more, never
less: at worst a clean message takes the strict path."""


class Record(Protocol):
    """The parts of a Kafka consumer record the pipeline reads (aiokafka's ConsumerRecord has them)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


class DeadLetter(Exception):
    """The record goes to the dead-letter topic with this error class and reason.

    `raw` is the decoded JSON object when there was one, for `on_invalid` hooks.
    """

    def __init__(self, error_class: str, reason: str, raw: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.error_class = error_class
        self.reason = reason
        self.raw = raw


class TopicContracts(Protocol):
    """What decoding needs to know of a subscription."""

    known_types: frozenset[str]

    def model_for(self, message_type: str) -> type[BaseModel] | None: ...

    def wanted_values(self, model: type[BaseModel]) -> frozenset[str] | None: ...


def decode(record: Record, contracts: TopicContracts) -> BaseModel | None:
    """The record's message, or None for a message this service does not act on: a contract of the topic it does not
    handle, or one whose `HEADER_FIELD` holds a value it does not want (`Subscription.only`).

    A record whose headers say so (its `type`, then that field's header) is skipped without reading its value; a
    record without usable headers goes the whole way. Raises `DeadLetter` for anything else: no exception of another
    kind leaves.
    """
    try:
        model = _model_by_headers(record, contracts)
        if model is SKIP:
            return None
        message = _read_fast(record.value, model) if model is not None else None
        if message is None:
            message = _decode(record, contracts)
        if message is None:
            return None
        wanted = contracts.wanted_values(type(message))
        return message if wanted is None or message.header_field_text() in wanted else None
    except DeadLetter:
        raise
    except Exception as error:  # noqa: BLE001 - a record's bytes must never crash the consumer
        raise DeadLetter(type(error).__name__, f"undecodable: {type(error).__name__}") from None


SKIP = object()


def skipped_unread(record: Record, contracts: TopicContracts) -> bool:
    """Whether the record's headers say this service does not act on it (see `decode`), so that it is skipped
    without reading its value."""
    return _model_by_headers(record, contracts) is SKIP


def _model_by_headers(record: Record, contracts: TopicContracts) -> Any:
    """The model the record's `type` header names, SKIP when its headers say this service does not act on it, None
    when they do not tell (a header absent, odd, or naming no contract of the topic: the value decides)."""
    message_type = _header_type(record)
    if message_type not in contracts.known_types:
        return None
    model = contracts.model_for(message_type)
    if model is None or _unwanted_by_header(record, model, contracts):
        return SKIP
    return model


def _unwanted_by_header(record: Record, model: type[BaseModel], contracts: TopicContracts) -> bool:
    """Whether the record's header of `model`'s HEADER_FIELD holds a value this service does not want (an absent or
    odd header leaves it to the value)."""
    wanted = contracts.wanted_values(model)
    if wanted is None:
        return False
    try:
        value = header_value(record, model.HEADER_FIELD)
        return value is not None and value.decode("utf-8") not in wanted
    except Exception:  # noqa: BLE001 - odd headers: the value decides, on the whole path
        return False


def _header_type(record: Record) -> str:
    """The record's `type` header as text; empty when absent or odd (then the value decides, on the whole path)."""
    try:
        return (header_value(record, "type") or b"").decode("utf-8")
    except Exception:  # noqa: BLE001 - odd headers: the value decides, on the whole path
        return ""


def header_value(record: Record, name: str) -> bytes | None:
    """The value of the record's first header called `name` (None if absent, null or not bytes)."""
    for key, value in record.headers or ():
        if key == name:
            return value if isinstance(value, bytes) else None
    return None


def _read_fast(value: bytes | None, model: type[BaseModel]) -> BaseModel | None:
    """The message, read by pydantic straight from the bytes; None when the strict path must decide.

    Taken only when the bytes cannot hold anything `parse_json` refuses: no `\\u` escape (the only way valid JSON
    writes NUL or a lone surrogate: raw control bytes and invalid UTF-8 are invalid JSON for pydantic too), no run of
    19 digits (an integer beyond 64 bits), no exponent, NaN or Infinity where a number starts (infinity), and no more
    than MAX_DEPTH opening brackets (their count bounds the depth). Anything pydantic refuses, and a body without its
    own `type` (the model's default would stand in), goes the whole way, so dead letters keep their class and reason.
    """
    if type(value) is not bytes or not hasattr(model, "read_json") or b"\\u" in value:
        return None
    shape = value.translate(_SHAPE)
    if _LONG_DIGITS in shape or shape.count(b"[") > MAX_DEPTH or b":e" in value.translate(_VALUE_STARTS, _NUMBER_BODY):
        return None
    try:
        message = model.read_json(value)
    except ValidationError:
        return None
    return message if "type" in message.model_fields_set else None


def _decode(record: Record, contracts: TopicContracts) -> BaseModel | None:
    raw = parse_json(record.value)
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise DeadLetter("MissingType", "not a JSON object with a string 'type'", raw if isinstance(raw, dict) else None)
    message_type = raw["type"]
    model = contracts.model_for(message_type)
    if model is None:
        if message_type in contracts.known_types:
            return None
        raise DeadLetter("UnknownMessageType", f"type {_printable(message_type)!r} is not a contract of {record.topic}", raw)
    try:
        return model.read(raw) if hasattr(model, "read") else model.model_validate(raw)
    except ValidationError as error:
        raise DeadLetter("ContractViolation", "; ".join(describe_validation_error(error)), raw) from None


def parse_json(value: bytes | None) -> Any:
    """Strict JSON from UTF-8 bytes: finite numbers within 64 bits, no NUL or lone surrogate, bounded depth."""
    if value is None:
        raise DeadLetter("EmptyValue", "the record has no value (a tombstone)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DeadLetter("InvalidJson", f"not UTF-8: {error.reason} at byte {error.start}") from None
    try:
        raw = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise DeadLetter("InvalidJson", f"not JSON: {error.msg} at position {error.pos}") from None
    except RecursionError:
        raise DeadLetter("TooDeep", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:
        raise DeadLetter("InvalidJson", f"not JSON: {str(error)[:200]}") from None
    _check_tree(raw)
    return raw


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:40]} is out of range")
    return number


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not a JSON number")


def _check_tree(raw: Any) -> None:
    """Walks the JSON without recursion and refuses what no contract or database could hold."""
    stack: list[tuple[Any, int]] = [(raw, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[Any] = [*node.keys(), *node.values()]
        elif isinstance(node, list):
            children = node
        else:
            _check_scalar(node)
            continue
        if depth > MAX_DEPTH:
            raise DeadLetter("TooDeep", f"nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)


def _check_scalar(node: Any) -> None:
    if isinstance(node, str):
        if "\x00" in node:
            raise DeadLetter("InvalidText", "a string holds a NUL character")
        try:
            node.encode("utf-8")
        except UnicodeEncodeError:
            raise DeadLetter("InvalidText", "a string holds a lone surrogate (not valid Unicode)") from None
    elif isinstance(node, int) and not isinstance(node, bool) and abs(node) > _INT64:
        raise DeadLetter("NumberOutOfRange", "an integer beyond 64 bits")


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:200]


def describe_validation_error(error: ValidationError) -> list[str]:
    """Readable reasons from a pydantic error, without the offending input values (they may be personal)."""
    return [
        f"{'.'.join(_printable(str(part)) for part in item['loc']) or '(message)'}: {item['msg']}"
        for item in error.errors(include_input=False, include_url=False)
    ]
