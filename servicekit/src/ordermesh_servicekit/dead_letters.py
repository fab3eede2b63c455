"""Dead letters: the record as it came plus headers naming where it came from and why it failed.

A record whose dead letter cannot be written as it is (too large for Kafka, headers the outbox
cannot hold) goes in a sanitized form instead (value cut, original headers left out, a
`dlq.sanitized` header saying why) and the original is kept in `dead_letter_originals`.
"""

import base64
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from uuid import NAMESPACE_URL, UUID, uuid5

import asyncpg

from ordermesh_contracts.topics import dead_letter_topic

from .decoding import DeadLetter, Record
from .logging import redact_text
from .outbox import OutgoingMessage, write_outbox

DEFAULT_MAX_BYTES = 900_000
"""Largest dead letter written as it is: under Kafka's default 1 MiB message limit, headers included."""


def safe_text(text: str, limit: int = 2000) -> str:
    """`text` redacted, cut, without NUL characters or lone surrogates (PostgreSQL and Kafka headers take it)."""
    cleaned = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    return redact_text(cleaned)[:limit]


def position_id(group_id: str, record: Record) -> UUID:
    """The inbox id of a record by its position: dead-lettering one record twice writes one letter."""
    return uuid5(NAMESPACE_URL, f"dlq:{group_id}:{record.topic}:{record.partition}:{record.offset}")


def _dlq_headers(record: Record, dead: DeadLetter, group_id: str) -> list[tuple[str, bytes | None]]:
    return [
        ("dlq.original_topic", record.topic.encode()),
        ("dlq.original_partition", str(record.partition).encode()),
        ("dlq.original_offset", str(record.offset).encode()),
        ("dlq.consumer_group", group_id.encode()),
        ("dlq.error_class", safe_text(dead.error_class, 200).encode() or b"Error"),
        ("dlq.error_message", safe_text(dead.reason).encode() or safe_text(dead.error_class, 200).encode()),
        ("dlq.failed_at", datetime.now(timezone.utc).isoformat().encode()),
    ]


def original_headers(record: Record) -> list[tuple[str, bytes | None]]:
    """The record's headers except earlier `dlq.*` ones (a replayed letter failing again gets fresh ones)."""
    return [(str(k), v) for k, v in (record.headers or ()) if not str(k).startswith("dlq.")]


def _size(key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes | None]]) -> int:
    return len(key or b"") + len(value) + sum(len(k.encode("utf-8", "replace")) + len(v or b"") for k, v in headers)


def dead_letter(record: Record, dead: DeadLetter, group_id: str) -> OutgoingMessage:
    """The dead letter as it is: the record's key, value and headers, plus the `dlq.*` headers."""
    headers = [*original_headers(record), *_dlq_headers(record, dead, group_id)]
    return OutgoingMessage(dead_letter_topic(record.topic), record.key, record.value or b"", headers)


def fits(letter: OutgoingMessage, max_bytes: int) -> bool:
    """Whether Kafka will take the letter as it is."""
    return _size(letter.key, letter.value, letter.headers) <= max_bytes


def sanitized_dead_letter(record: Record, dead: DeadLetter, group_id: str, why: str, max_bytes: int) -> OutgoingMessage:
    """A letter Kafka and the outbox always take: value cut to fit, original headers left out, the reason said."""
    headers = [*_dlq_headers(record, dead, group_id), ("dlq.sanitized", safe_text(why, 500).encode())]
    key = (record.key or b"")[:1024] or None
    room = max(0, max_bytes - _size(key, b"", headers) - 64)
    value = record.value or b""
    if len(value) > room:
        headers.append(("dlq.value_cut", f"{len(value)} bytes cut to {room}".encode()))
        value = value[:room]
    return OutgoingMessage(dead_letter_topic(record.topic), key, value, headers)


async def write_dead_letter(
    conn: asyncpg.Connection,
    record: Record,
    group_id: str,
    messages: Sequence[OutgoingMessage],
    *,
    keep_original_because: str | None = None,
) -> bool:
    """Writes the letter (and messages about it) once per record position; False if it was written before.

    With `keep_original_because`, the record's key, value and headers are kept in `dead_letter_originals`.
    """
    first_time = await conn.fetchval(
        "INSERT INTO inbox (message_id, topic) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        position_id(group_id, record),
        record.topic,
    )
    if not first_time:
        return False
    if keep_original_because is not None:
        await conn.execute(
            """
            INSERT INTO dead_letter_originals (consumer_group, topic, partition, "offset", key, value, headers, reason)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """,
            group_id,
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            _headers_as_json(record).encode(),
            safe_text(keep_original_because),
        )
    await write_outbox(conn, messages)
    return True


def _headers_as_json(record: Record) -> str:
    return json.dumps(
        [
            [str(k), None if v is None else base64.b64encode(bytes(v)).decode()]
            for k, v in (record.headers or ())
        ]
    )
