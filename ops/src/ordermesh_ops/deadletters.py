"""Dead letters: read them from every `<topic>.dlq`, replay them to their original topic, discard them with a reason.

What staff decided about a dead letter (replayed or discarded, by whom, when, why) is kept on the compacted topic
`ops.dlq-decisions.v1`, keyed by the dead letter's position. Dead letters live in Kafka, so their decisions live
beside them: no service owns the dead letters of every topic, the CLI has no database, and a compacted topic keeps
the latest decision per dead letter for as long as the dead letter itself matters.
"""

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from ordermesh_contracts.topics import ALL_TOPICS, dead_letter_topic
from ordermesh_servicekit.logging import redact

from .client import Connection
from .kafka import admin_client, producer, read_topics_to_end

DECISIONS_TOPIC = "ops.dlq-decisions.v1"
REPLAYED_FROM_HEADER = "ordermesh.replayed_from"
DEAD_LETTER_TOPICS = tuple(dead_letter_topic(t) for t in ALL_TOPICS)


@dataclass
class Decision:
    """What staff did with a dead letter."""

    action: str
    """'replayed' or 'discarded'."""
    by: str
    at: str
    reason: str = ""


@dataclass
class DeadLetter:
    """One record of a dead-letter topic, with the headers the consumer wrote and staff's latest decision."""

    id: str
    """`<dlq topic>:<partition>:<offset>`, the dead letter's position: what staff name it by."""
    original_topic: str
    original_partition: int | None
    original_offset: int | None
    consumer_group: str
    error_class: str
    reason: str
    failed_at: datetime | None
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    decision: Decision | None = None

    @property
    def status(self) -> str:
        """pending, replayed or discarded."""
        return self.decision.action if self.decision else "pending"

    @property
    def sanitized(self) -> bool:
        """Whether the letter holds a cut or header-less copy (the consumer kept the original in its database)."""
        return any(k == "dlq.sanitized" for k, _v in self.headers)

    @property
    def body(self) -> Any:
        """The message as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.value)
        except (ValueError, UnicodeDecodeError, RecursionError):  # not JSON, or nested too deep to read
            return None

    def summary(self) -> dict[str, Any]:
        """A row for a list: no payload, nothing personal."""
        body = self.body if isinstance(self.body, dict) else {}
        return {
            "id": self.id,
            "status": self.status,
            "failed_at": self.failed_at.isoformat() if self.failed_at else "",
            "original_topic": self.original_topic,
            "group": self.consumer_group,
            "type": str(body.get("type", "")),
            "order_id": str(body.get("order_id", "")),
            "event_id": str(body.get("event_id", "")),
            "key": self.key.decode("utf-8", "replace") if self.key else "",
            "error_class": self.error_class,
            "reason": self.reason[:200],
            "decided": f"{self.decision.by} at {self.decision.at}: {self.decision.reason}" if self.decision else "",
        }

    def detail(self) -> dict[str, Any]:
        """Everything about it for `show`: headers, reason and the payload with personal data redacted."""
        body = self.body
        return {
            **self.summary(),
            "reason": self.reason,
            "original_partition": self.original_partition,
            "original_offset": self.original_offset,
            "headers": {k: v.decode("utf-8", "replace") for k, v in self.headers},
            "payload": redact(body) if body is not None else redact(self.value.decode("utf-8", "replace"))[:2000],
            "decision": asdict(self.decision) if self.decision else None,
        }


def _header(headers: Iterable[tuple[str, bytes]], name: str) -> str:
    for key, value in headers:
        if key == name and value is not None:
            return value.decode("utf-8", "replace")
    return ""


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def from_record(record: Any) -> DeadLetter:
    """A dead letter from a record of a `.dlq` topic."""
    headers = [(k, v) for k, v in (record.headers or ()) if v is not None]
    failed_at_text = _header(headers, "dlq.failed_at")
    try:
        failed_at = datetime.fromisoformat(failed_at_text)
    except ValueError:
        failed_at = datetime.fromtimestamp(record.timestamp / 1000, timezone.utc) if record.timestamp else None
    return DeadLetter(
        id=f"{record.topic}:{record.partition}:{record.offset}",
        original_topic=_header(headers, "dlq.original_topic") or record.topic.removesuffix(".dlq"),
        original_partition=_int_or_none(_header(headers, "dlq.original_partition")),
        original_offset=_int_or_none(_header(headers, "dlq.original_offset")),
        consumer_group=_header(headers, "dlq.consumer_group"),
        error_class=_header(headers, "dlq.error_class"),
        reason=_header(headers, "dlq.error_message"),
        failed_at=failed_at,
        key=record.key,
        value=record.value or b"",
        headers=headers,
    )


async def decisions(connection: Connection) -> dict[str, Decision]:
    """The latest decision per dead letter id."""
    latest: dict[str, Decision] = {}
    for record in await read_topics_to_end(connection, [DECISIONS_TOPIC]):
        if record.key is None:
            continue
        if record.value is None:
            latest.pop(record.key.decode(), None)
            continue
        latest[record.key.decode()] = Decision(**json.loads(record.value))
    return latest


async def list_dead_letters(
    connection: Connection,
    *,
    topic: str | None = None,
    since: datetime | None = None,
    status: str | None = None,
) -> list[DeadLetter]:
    """Dead letters, oldest first: of one original topic (or every one), failed since a time, in a status."""
    if topic is not None:
        original = topic.removesuffix(".dlq")
        if original not in ALL_TOPICS:
            raise ValueError(f"unknown topic {topic!r}; one of {', '.join(ALL_TOPICS)}")
        names = [dead_letter_topic(original)]
    else:
        names = list(DEAD_LETTER_TOPICS)
    letters = [from_record(r) for r in await read_topics_to_end(connection, names)]
    known = await decisions(connection)
    for letter in letters:
        letter.decision = known.get(letter.id)
    if since is not None:
        letters = [x for x in letters if x.failed_at is None or x.failed_at >= since]
    if status is not None:
        letters = [x for x in letters if x.status == status]
    return sorted(letters, key=lambda x: (x.failed_at or datetime.min.replace(tzinfo=timezone.utc), x.id))


async def find(connection: Connection, dead_letter_id: str) -> DeadLetter:
    """One dead letter by its id (`<dlq topic>:<partition>:<offset>`); LookupError when there is none."""
    try:
        topic, partition, offset = dead_letter_id.rsplit(":", 2)
        position = (topic, int(partition), int(offset))
    except ValueError:
        raise LookupError(f"{dead_letter_id!r} is not a dead letter id (<topic>.dlq:<partition>:<offset>)") from None
    if topic not in DEAD_LETTER_TOPICS:
        raise LookupError(f"{topic!r} is not a dead-letter topic")
    for letter in await list_dead_letters(connection, topic=topic):
        if letter.id == f"{position[0]}:{position[1]}:{position[2]}":
            return letter
    raise LookupError(f"no dead letter {dead_letter_id}")


def _replay_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    kept = [(k, v) for k, v in letter.headers if not k.startswith("dlq.") and k != REPLAYED_FROM_HEADER]
    return [*kept, (REPLAYED_FROM_HEADER, letter.id.encode())]


async def ensure_decisions_topic(connection: Connection) -> None:
    """Creates the compacted decisions topic when it does not exist yet."""
    admin = admin_client(connection)
    await admin.start()
    try:
        if DECISIONS_TOPIC in await admin.list_topics():
            return
        try:
            await admin.create_topics(
                [NewTopic(DECISIONS_TOPIC, num_partitions=1, replication_factor=1, topic_configs={"cleanup.policy": "compact"})]
            )
        except TopicAlreadyExistsError:
            pass
    finally:
        await admin.close()


async def _record(kafka_producer: Any, letter: DeadLetter, decision: Decision) -> None:
    await kafka_producer.send_and_wait(DECISIONS_TOPIC, json.dumps(asdict(decision)).encode(), key=letter.id.encode())
    letter.decision = decision


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


async def replay(connection: Connection, letters: list[DeadLetter], *, by: str, reason: str = "") -> list[DeadLetter]:
    """Publishes each dead letter again to its original topic, as it was (same key, value and event id; the dead-letter
    headers dropped, `ordermesh.replayed_from` added), and records the replay. Every consumer group of that topic
    sees it again: those that had handled it find it in their inbox and skip it. Returns the letters replayed."""
    if not letters:
        return []
    unknown = sorted({x.original_topic for x in letters if x.original_topic not in ALL_TOPICS})
    if unknown:
        raise ValueError(f"dead letters name unknown original topics: {', '.join(unknown)}")
    sanitized = [x.id for x in letters if x.sanitized]
    if sanitized:
        raise ValueError(
            f"{', '.join(sanitized)} hold a sanitized copy, not the message: its original is kept in the consumer's "
            "dead_letter_originals table; discard the letter and republish the original from there"
        )
    await ensure_decisions_topic(connection)
    publisher = producer(connection)
    await publisher.start()
    try:
        for letter in letters:
            await publisher.send_and_wait(letter.original_topic, letter.value, key=letter.key, headers=_replay_headers(letter))
            await _record(publisher, letter, Decision("replayed", by, _now(), reason))
    finally:
        await publisher.stop()
    return letters


async def discard(connection: Connection, letters: list[DeadLetter], *, by: str, reason: str) -> list[DeadLetter]:
    """Records that staff looked at these dead letters and decided they need nothing more, with why."""
    if not reason.strip():
        raise ValueError("a discard needs a reason")
    await ensure_decisions_topic(connection)
    publisher = producer(connection)
    await publisher.start()
    try:
        for letter in letters:
            await _record(publisher, letter, Decision("discarded", by, _now(), reason.strip()))
    finally:
        await publisher.stop()
    return letters


def depth_by_topic(letters: Iterable[DeadLetter]) -> dict[str, int]:
    """Pending dead letters per original topic."""
    depth: dict[str, int] = {}
    for letter in letters:
        if letter.status == "pending":
            depth[letter.original_topic] = depth.get(letter.original_topic, 0) + 1
    return depth
