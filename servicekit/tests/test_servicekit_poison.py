"""The consumer against hostile records on a real PostgreSQL: every record ends in exactly one outcome, nothing escapes."""

import asyncio
import base64
import errno
import itertools
import json
from collections.abc import Mapping
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordermesh_contracts import OrderRejected, PaymentAuthorized, PaymentsEvent, topics
from ordermesh_servicekit.consuming import Consumer, MessageContext, Subscription, TransientError, is_transient
from ordermesh_servicekit.metrics import Metrics
from ordermesh_servicekit.outbox import OutgoingMessage, decode_headers, encode_headers, never_accepted
from poison_corpus import golden, poison_corpus
from doubles import FakeRecord

OUTCOMES = ("processed", "duplicate", "skipped", "refused", "dead_lettered")
DLQ = topics.PAYMENTS_EVENTS + ".dlq"




class Handler:
    """Applies a change in the unit of work; raises what it is told to, in turn."""

    def __init__(self, *fail_with: BaseException) -> None:
        self.calls = 0
        self.fail_with = list(fail_with)

    async def __call__(self, message: PaymentAuthorized, ctx: MessageContext) -> None:
        self.calls += 1
        async with ctx.unit_of_work() as uow:
            await uow.conn.execute("INSERT INTO changes VALUES ($1)", message.authorization_id)
            if self.fail_with:
                raise self.fail_with.pop(0)


def consumer(pool: asyncpg.Pool, handler: Handler, metrics: Metrics, on_invalid=None, **options: Any) -> Consumer:
    subscription = Subscription(topics.PAYMENTS_EVENTS, PaymentsEvent, {PaymentAuthorized: handler}, on_invalid=on_invalid)
    return Consumer(subscription, group_id="ordermesh-test", pool_provider=lambda: pool, metrics=metrics, retry_max_seconds=0.2, **options)


def outcomes(metrics: Metrics) -> dict[str, float]:
    return {
        outcome: metrics.registry.get_sample_value(
            "ordermesh_messages_total", {"topic": topics.PAYMENTS_EVENTS, "outcome": outcome}
        )
        or 0.0
        for outcome in OUTCOMES
    }


async def letters(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT key, headers::text AS headers, payload FROM outbox WHERE topic = $1 ORDER BY id", DLQ)
    return [{"key": r["key"], "headers": decode_headers(r["headers"]), "payload": r["payload"]} for r in rows]


def header(letter: Mapping[str, Any], name: str) -> bytes | None:
    return dict(letter["headers"]).get(name)


def authorized(**changes: Any) -> bytes:
    return json.dumps({**golden("PaymentAuthorized"), **changes}).encode()


@pytest.mark.parametrize("poison", poison_corpus("PaymentAuthorized", strict=False), ids=lambda p: p.kind)
async def test_every_kind_of_malformed_record_is_dead_lettered_once_with_its_class_and_reason(pool, poison) -> None:
    handler, metrics = Handler(), Metrics("test")
    record = FakeRecord(topics.PAYMENTS_EVENTS, 1, 7, b"poison-key", poison.value, poison.headers)
    await consumer(pool, handler, metrics).process([record])
    await consumer(pool, handler, metrics).process([record])
    [letter] = await letters(pool)
    assert header(letter, "dlq.error_class") and header(letter, "dlq.error_message")
    assert header(letter, "dlq.original_offset") == b"7"
    assert handler.calls == 0
    assert outcomes(metrics)["dead_lettered"] == 2
    if len(poison.value or b"") < 900_000:
        assert letter["payload"] == (poison.value or b"")
        assert [(k, v) for k, v in letter["headers"] if not k.startswith("dlq.")] == poison.headers
    else:
        assert header(letter, "dlq.sanitized") and header(letter, "dlq.value_cut")
        [original] = await pool.fetch("SELECT value, headers FROM dead_letter_originals")
        assert original["value"] == poison.value


async def test_an_unknown_field_in_an_event_is_ignored_and_the_event_processed(pool) -> None:
    handler, metrics = Handler(), Metrics("test")
    await consumer(pool, handler, metrics).process([FakeRecord(topics.PAYMENTS_EVENTS, 0, 1, b"k", authorized(added_later="x"))])
    assert handler.calls == 1
    assert outcomes(metrics)["processed"] == 1
    assert await letters(pool) == []


async def test_an_on_invalid_hook_that_raises_leaves_the_dead_letter_without_its_messages(pool) -> None:
    def hook(raw, reasons):
        shop_id = raw["shop_id"] + "\ud800"  # as a hook would copy a lone surrogate it was given
        return [OutgoingMessage.of(topics.SHOP_UPDATES, OrderRejected(shop_id=shop_id, external_order_no="X", reasons=reasons))]

    record = FakeRecord(topics.PAYMENTS_EVENTS, 0, 3, b"k", authorized(amount="much"))
    await consumer(pool, Handler(), Metrics("test"), on_invalid=hook).process([record])
    [letter] = await letters(pool)
    assert header(letter, "dlq.error_class") == b"ContractViolation"
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_a_hook_message_the_outbox_refuses_falls_back_to_the_dead_letter_alone(pool) -> None:
    def hook(_raw, _reasons):
        return [OutgoingMessage(topics.SHOP_UPDATES, b"k", b"{}", [("bad\x00key", b"v")])]

    record = FakeRecord(topics.PAYMENTS_EVENTS, 0, 4, b"k", authorized(amount="much"))
    await consumer(pool, Handler(), Metrics("test"), on_invalid=hook).process([record])
    [letter] = await letters(pool)
    assert header(letter, "dlq.sanitized") is None
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_a_dead_letter_whose_headers_the_outbox_refuses_is_written_sanitized_and_the_original_kept(pool) -> None:
    metrics = Metrics("test")
    record = FakeRecord(topics.PAYMENTS_EVENTS, 0, 5, b"k", b"not json", [("nul\x00in-the-key", b"v")])
    await consumer(pool, Handler(), metrics).process([record])
    [letter] = await letters(pool)
    assert header(letter, "dlq.error_class") == b"InvalidJson"
    assert b"UntranslatableCharacter" in header(letter, "dlq.sanitized")
    assert letter["payload"] == b"not json"
    [original] = await pool.fetch("SELECT topic, partition, \"offset\", value, headers FROM dead_letter_originals")
    assert (original["topic"], original["partition"], original["offset"], original["value"]) == (topics.PAYMENTS_EVENTS, 0, 5, b"not json")
    assert json.loads(original["headers"]) == [["nul\x00in-the-key", base64.b64encode(b"v").decode()]]
    assert metrics.registry.get_sample_value("ordermesh_dead_letters_sanitized_total") == 1


async def test_a_dead_letter_larger_than_the_limit_is_cut_and_the_original_kept(pool) -> None:
    value = b"x" * 5000
    await consumer(pool, Handler(), Metrics("test"), dead_letter_max_bytes=2000).process(
        [FakeRecord(topics.PAYMENTS_EVENTS, 0, 6, b"k", value)]
    )
    [letter] = await letters(pool)
    assert len(letter["payload"]) + sum(len(k) + len(v or b"") for k, v in letter["headers"]) <= 2000
    assert letter["payload"] == value[: len(letter["payload"])]
    assert header(letter, "dlq.value_cut").startswith(b"5000 bytes cut to ")
    assert await pool.fetchval("SELECT value FROM dead_letter_originals") == value


async def test_an_unexpected_handler_error_is_retried_and_the_message_processed_when_it_passes(pool) -> None:
    handler, metrics = Handler(RuntimeError("flaky"), KeyError("flaky")), Metrics("test")
    await consumer(pool, handler, metrics, handler_attempts=3).process([FakeRecord(topics.PAYMENTS_EVENTS, 0, 8, b"k", authorized())])
    assert handler.calls == 3
    assert outcomes(metrics)["processed"] == 1
    assert metrics.registry.get_sample_value("ordermesh_handler_retries_total") == 2


async def test_a_handler_error_that_persists_is_dead_lettered_with_its_class_after_the_configured_attempts(pool) -> None:
    handler = Handler(*[OSError(errno.ENOENT, "no such file")] * 5)
    await consumer(pool, handler, Metrics("test"), handler_attempts=2).process([FakeRecord(topics.PAYMENTS_EVENTS, 0, 9, b"k", authorized())])
    assert handler.calls == 2
    [letter] = await letters(pool)
    assert header(letter, "dlq.error_class") == b"FileNotFoundError"
    assert await pool.fetchval("SELECT count(*) FROM changes") == 0


async def test_a_connection_error_is_retried_without_limit_and_never_dead_lettered(pool) -> None:
    failures = [ConnectionRefusedError(errno.ECONNREFUSED, "refused"), TransientError("gateway 503"), OSError(errno.EHOSTUNREACH, "no route")] * 2
    handler = Handler(*failures)
    await consumer(pool, handler, Metrics("test"), handler_attempts=1).process([FakeRecord(topics.PAYMENTS_EVENTS, 0, 10, b"k", authorized())])
    assert handler.calls == 7
    assert await letters(pool) == []


def test_only_connection_level_errors_count_as_transient() -> None:
    assert is_transient(ConnectionResetError()) and is_transient(asyncio.TimeoutError()) and is_transient(TransientError())
    assert is_transient(OSError(errno.ENETUNREACH, "network unreachable"))
    assert is_transient(OSError("Multiple exceptions: [Errno 111] Connect call failed"))
    assert not is_transient(OSError(errno.ENOENT, "no such file"))
    assert not is_transient(PermissionError(errno.EACCES, "denied"))
    assert not is_transient(OSError("something else"))


class Sleeper:
    """A handler that takes its time; records whether it was cancelled."""

    cancelled = False

    async def __call__(self, message: PaymentAuthorized, ctx: MessageContext) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def test_a_record_that_can_get_no_outcome_escapes_process_and_cancels_the_other_lanes(pool) -> None:
    await pool.execute("ALTER TABLE inbox RENAME TO inbox_gone")
    sleeper = Sleeper()
    subscription = Subscription(topics.PAYMENTS_EVENTS, PaymentsEvent, {PaymentAuthorized: sleeper})
    stuck = Consumer(subscription, group_id="ordermesh-test", pool_provider=lambda: pool, metrics=Metrics("test"), retry_max_seconds=0.2, concurrency=2)
    with pytest.raises(ExceptionGroup) as raised:
        await asyncio.wait_for(
            stuck.process([FakeRecord(topics.PAYMENTS_EVENTS, 0, 11, b"bad", b"{broken"), FakeRecord(topics.PAYMENTS_EVENTS, 0, 12, b"good", authorized())]),
            timeout=30,
        )
    assert raised.value.subgroup(asyncpg.UndefinedTableError) is not None
    assert sleeper.cancelled
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


def test_outbox_headers_keep_nul_bytes_null_values_and_any_byte_exactly() -> None:
    headers = [("type", b"A\x00B"), ("none", None), ("latin", bytes(range(1, 256))), ("empty", b"")]
    assert decode_headers(encode_headers(headers)) == headers
    assert "\\u0000" not in encode_headers(headers)


def test_rows_kafka_will_never_accept_are_told_apart_from_kafka_being_down() -> None:
    from aiokafka.errors import (
        KafkaConnectionError,
        KafkaTimeoutError,
        MessageSizeTooLargeError,
        NotLeaderForPartitionError,
        TopicAuthorizationFailedError,
        UnknownTopicOrPartitionError,
    )

    assert never_accepted(MessageSizeTooLargeError()) and never_accepted(UnknownTopicOrPartitionError())
    assert never_accepted(TopicAuthorizationFailedError()) and never_accepted(TypeError("bad header"))
    assert not never_accepted(KafkaConnectionError()) and not never_accepted(KafkaTimeoutError())
    assert not never_accepted(NotLeaderForPartitionError()) and not never_accepted(ConnectionResetError())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


def envelope_with(value: Any) -> bytes:
    return json.dumps({**golden("PaymentAuthorized"), "amount": value}).encode("utf-8", "surrogatepass")


RECORD_VALUES = st.one_of(
    st.binary(max_size=300),
    JSON.map(lambda v: json.dumps(v).encode()),
    JSON.map(envelope_with),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 3000).map(lambda depth: ('{"type": "PaymentAuthorized", "a": ' + "[" * depth + "]" * depth + "}").encode()),
    st.text().map(lambda text: json.dumps({**golden("PaymentAuthorized"), "shop_id": text}).encode()),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1).map(
        lambda text: json.dumps({**golden("PaymentAuthorized"), "shop_id": text}).encode()
    ),
    st.none(),
)
OFFSETS = itertools.count(1000)
HEADERS = st.lists(st.tuples(st.text(max_size=10), st.one_of(st.none(), st.binary(max_size=20))), max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(values=st.lists(st.tuples(RECORD_VALUES, HEADERS), min_size=1, max_size=4))
async def test_arbitrary_bytes_and_json_each_end_in_exactly_one_outcome_and_nothing_raises(pool, values) -> None:
    metrics = Metrics("test")
    records = [
        FakeRecord(topics.PAYMENTS_EVENTS, 0, next(OFFSETS), f"key-{n % 2}".encode(), value, headers)
        for n, (value, headers) in enumerate(values)
    ]
    before = len(await letters(pool))
    await consumer(pool, Handler(), metrics, concurrency=2).process(records)
    counted = outcomes(metrics)
    assert sum(counted.values()) == len(records)
    assert len(await letters(pool)) - before == counted["dead_lettered"]
