"""structlog JSON logging with personal data redacted; context is bound per message at the entry point."""

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog

PERSONAL_KEYS = frozenset(
    {
        "name",
        "email",
        "phone",
        "address",
        "billing_address",
        "postal_code",
        "line1",
        "line2",
        "city",
        "customer",
        "to",
        "recipient",
        "recipients",
        "card_token",
        "password",
        "secret",
        "dsn",
        "database_url",
    }
)
"""Keys whose values never reach a log line."""

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


def redact(value: Any) -> Any:
    """Returns `value` with personal data removed from mappings, lists and strings."""
    if isinstance(value, Mapping):
        return {k: (REDACTED if str(k).lower() in PERSONAL_KEYS else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _redact_processor(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return redact(event_dict)


def configure_logging(service: str, level: str = "INFO") -> structlog.stdlib.BoundLogger:
    """Sets up JSON logs on stdout for `service` (stdlib logging included) and returns its logger."""
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        numeric_level = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact_processor,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
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
