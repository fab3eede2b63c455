"""structlog JSON logging with personal data redacted; context is bound per message at the entry point."""

import logging
import math
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog

PERSONAL_KEYS = frozenset(
    {
        # people and how to reach them
        "name",
        "first_name",
        "last_name",
        "full_name",
        "given_name",
        "family_name",
        "kana",
        "name_kana",
        "customer",
        "customer_name",
        "recipient_name",
        "billing_name",
        "shipping_name",
        "company",
        "email",
        "phone",
        "tel",
        "mobile",
        "fax",
        "birthday",
        "date_of_birth",
        "to",
        "cc",
        "bcc",
        "reply_to",
        "recipient",
        "recipients",
        "rcpt",
        # where they live
        "address",
        "address1",
        "address2",
        "billing_address",
        "shipping_address",
        "delivery_address",
        "postal_code",
        "postcode",
        "zip",
        "zip_code",
        "line1",
        "line2",
        "street",
        "building",
        "city",
        "town",
        "prefecture",
        "province",
        "latitude",
        "longitude",
        "ip",
        "ip_address",
        "browser_ip",
        # what they wrote in free text
        "remarks",
        "customer_remarks",
        "note_to_seller",
        # payment instruments and secrets
        "card_token",
        "card_number",
        "cvc",
        "exp_month",
        "exp_year",
        "password",
        "secret",
        "api_key",
        "token",
        "authorization",
        "cookie",
        "dsn",
        "database_url",
    }
)
"""Keys whose values never reach a log line (compared in lower case, `-` read as `_`)."""

PERSONAL_SUFFIXES = ("_email", "_phone", "_tel", "_address", "_postal_code", "_zip", "_zip_code", "_password", "_secret")
"""Key endings that mark personal data or secrets too (`contact_email`, `customer_phone`, `stripe_secret`)."""


def is_personal_key(key: object) -> bool:
    """Whether a log key names personal data or a secret."""
    normalized = str(key).strip().lower().replace("-", "_")
    return normalized in PERSONAL_KEYS or normalized.endswith(PERSONAL_SUFFIXES)


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# A phone number starts with a country code or a trunk 0; dates, order numbers and ids do not.
_PHONE = re.compile(r"(?<![\w+-])(?:\+\d{1,3}[- ]?\d|0\d)[\d -]{7,14}\d(?![\w-])")
_DSN_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
REDACTED = "[redacted]"


def redact_text(text: str) -> str:
    """Masks e-mail addresses, phone numbers and DSN passwords inside free text."""
    text = _DSN_PASSWORD.sub(r"\1" + REDACTED + "@", text)
    text = _EMAIL.sub(REDACTED, text)
    return _PHONE.sub(REDACTED, text)


MAX_DEPTH = 32
"""Nesting deeper than this is cut off (a hostile or cyclic value must not break the log call)."""
_MAX_INT_BITS = 256


def redact(value: Any, _depth: int = 0) -> Any:
    """Returns `value` with personal data removed: values of personal keys at any depth, e-mail addresses and phone
    numbers in text (keys included), pydantic models read as their fields; other objects become redacted text. The
    result is always JSON-renderable: nesting past MAX_DEPTH, huge integers and non-finite floats are summarised."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if value.bit_length() <= _MAX_INT_BITS else f"[integer of {value.bit_length()} bits]"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return redact_text(value)
    if _depth >= MAX_DEPTH:
        return "[too deep]"
    if hasattr(value, "model_dump") and not isinstance(value, type):
        value = value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {
            redact_text(str(k)): (REDACTED if is_personal_key(k) else redact(v, _depth + 1)) for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(v, _depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return redact_text(bytes(value).decode("utf-8", errors="replace"))
    return redact_text(str(value))


def _redact_processor(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # Keys starting with "_" are structlog's own (the stdlib record), removed before rendering.
    return {
        k: (v if k.startswith("_") else REDACTED if is_personal_key(k) else redact(v)) for k, v in event_dict.items()
    }


class LazyFields:
    """A value bound to the log context that stands for several fields, worked out only when a line is written (the
    consumer binds one per handled message, whatever the level, and at WARNING almost none is ever written)."""

    __slots__ = ()

    def fields(self) -> Mapping[str, Any]:
        """The fields this value stands for."""
        raise NotImplementedError


def _expand_lazy_fields(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # a key given to the log call itself wins over a bound one, as it does over anything bound
    for key in [key for key, value in event_dict.items() if isinstance(value, LazyFields)]:
        for name, value in event_dict.pop(key).fields().items():
            event_dict.setdefault(name, value)
    return event_dict


class bound:
    """Binds `kw` to the log context while the block runs, then restores what each key held before: the same as
    `structlog.contextvars.bound_contextvars`, without copying and scanning the whole context on entry (the consumer
    binds each message's keys, whatever the log level)."""

    __slots__ = ("_kw", "_tokens")

    def __init__(self, **kw: Any) -> None:
        self._kw = kw

    def __enter__(self) -> None:
        self._tokens = structlog.contextvars.bind_contextvars(**self._kw)

    def __exit__(self, *_exc: object) -> None:
        structlog.contextvars.reset_contextvars(**self._tokens)


def configure_logging(service: str, level: str = "INFO") -> structlog.stdlib.BoundLogger:
    """Sets up JSON logs on stdout for `service` (stdlib logging included) and returns its logger."""
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        numeric_level = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _expand_lazy_fields,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact_processor,
    ]
    structlog.configure(
        # A line below the level is dropped before any processor runs (they cost more than the call itself).
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    for noisy in ("aiokafka", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(numeric_level, logging.WARNING))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    return structlog.get_logger(service)
