"""The kit against a real PostgreSQL: migrations, the outbox, the inbox and the consumer's dead-lettering."""

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from ordermesh_contracts import (
    OrderRejected,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentsEvent,
    topics,
)
from ordermesh_servicekit.consuming import (
    Consumer,
    DuplicateMessage,
    MessageContext,
    PermanentError,
    Subscription,
    TransientError,
)
from ordermesh_servicekit import outbox_failed
from ordermesh_servicekit.database import keep_session
from ordermesh_servicekit.metrics import Metrics
from ordermesh_servicekit.migrations import (
    MigrationError,
    migrate_service,
    read_migrations,
)
from ordermesh_servicekit.outbox import OutgoingMessage, handled_rows, record_handled, write_outbox
from doubles import FakeRecord

DATA = Path(__file__).parent / "data"
EMAIL = "hanako.yamada@example.jp"


def payload(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


# --- migrations -----------------------------------------------------------------------------------

SERVICE_MIGRATIONS = {
    "0001_orders.sql": "CREATE TABLE orders (id uuid PRIMARY KEY, stage text NOT NULL);",
    "0002_order_notes.sql": "ALTER TABLE orders ADD COLUMN note text;",
    "0003_order_history.sql": "CREATE TABLE order_history (order_id uuid REFERENCES orders (id), what text);",
}


def write_migrations(directory: Path, files: Mapping[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


@pytest.fixture
async def conn(fresh_database: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(fresh_database)
    try:
        yield connection
    finally:
        await connection.close()


async def test_migrations_are_applied_in_number_order_after_the_kits_own(conn, tmp_path: Path) -> None:
    directory = write_migrations(tmp_path / "m", SERVICE_MIGRATIONS)
    applied = await migrate_service(conn, "orders", directory)
    assert [(m.component, m.version, m.name) for m in applied] == [
        ("servicekit", 1, "inbox_outbox"),
        ("servicekit", 2, "outbox_failed_and_dead_letter_originals"),
        ("servicekit", 3, "parked_and_job_runs"),
        ("servicekit", 4, "outbox_failed_decisions"),
        ("orders", 1, "orders"),
        ("orders", 2, "order_notes"),
        ("orders", 3, "order_history"),
    ]
    columns = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position"
    )
    assert [c["column_name"] for c in columns] == ["id", "stage", "note"]
    assert await conn.fetchval("SELECT count(*) FROM inbox") == 0
    assert await conn.fetchval("SELECT count(*) FROM outbox") == 0


async def test_applied_migrations_are_recorded_with_the_checksum_of_their_text(conn, tmp_path: Path) -> None:
    directory = write_migrations(tmp_path / "m", SERVICE_MIGRATIONS)
    await migrate_service(conn, "orders", directory)
    rows = await conn.fetch(
        "SELECT version, name, checksum FROM schema_migrations WHERE component = 'orders' ORDER BY version"
    )
    assert [(r["version"], r["name"], r["checksum"]) for r in rows] == [
        (int(name[:4]), name[5:-4], hashlib.sha256(sql.encode()).hexdigest())
        for name, sql in sorted(SERVICE_MIGRATIONS.items())
    ]


async def test_a_second_run_applies_nothing_and_a_new_file_is_applied_alone(conn, tmp_path: Path) -> None:
    directory = write_migrations(tmp_path / "m", SERVICE_MIGRATIONS)
    await migrate_service(conn, "orders", directory)
    assert await migrate_service(conn, "orders", directory) == []
    write_migrations(directory, {"0004_order_shop.sql": "ALTER TABLE orders ADD COLUMN shop_id text;"})
    assert [m.version for m in await migrate_service(conn, "orders", directory)] == [4]


async def test_an_applied_migration_that_was_edited_afterwards_is_refused(conn, tmp_path: Path) -> None:
    directory = write_migrations(tmp_path / "m", SERVICE_MIGRATIONS)
    await migrate_service(conn, "orders", directory)
    (directory / "0002_order_notes.sql").write_text("ALTER TABLE orders ADD COLUMN note varchar(200);")
    with pytest.raises(MigrationError, match="0002_order_notes was edited"):
        await migrate_service(conn, "orders", directory)


async def test_a_failing_migration_leaves_no_trace_and_does_not_keep_the_lock(conn, tmp_path: Path) -> None:
    directory = write_migrations(
        tmp_path / "m",
        {**SERVICE_MIGRATIONS, "0002_order_notes.sql": "ALTER TABLE orders ADD COLUMN note text; SELECT 1/0;"},
    )
    with pytest.raises(asyncpg.DivisionByZeroError):
        await migrate_service(conn, "orders", directory)
    versions = await conn.fetch("SELECT version FROM schema_migrations WHERE component = 'orders'")
    assert [r["version"] for r in versions] == [1]
    write_migrations(directory, SERVICE_MIGRATIONS)
    assert [m.version for m in await migrate_service(conn, "orders", directory)] == [2, 3]


@pytest.mark.parametrize("bad_name", ["2_orders.sql", "0002-order-notes.sql", "0002_OrderNotes.sql", "0002_.sql"])
def test_a_badly_named_migration_file_is_refused(tmp_path: Path, bad_name: str) -> None:
    directory = write_migrations(tmp_path, {"0001_orders.sql": "SELECT 1;", bad_name: "SELECT 1;"})
    with pytest.raises(MigrationError, match="NNNN_snake_case"):
        read_migrations("orders", directory)


def test_two_migrations_with_the_same_number_are_refused(tmp_path: Path) -> None:
    directory = write_migrations(tmp_path, {"0001_orders.sql": "SELECT 1;", "0001_order_notes.sql": "SELECT 1;"})
    with pytest.raises(MigrationError, match="used twice"):
        read_migrations("orders", directory)


async def test_two_replicas_migrating_at_once_apply_each_migration_exactly_once(
    fresh_database: str, tmp_path: Path
) -> None:
    directory = write_migrations(tmp_path / "m", SERVICE_MIGRATIONS)
    first, second = await asyncio.gather(asyncpg.connect(fresh_database), asyncpg.connect(fresh_database))
    try:
        results = await asyncio.gather(
            migrate_service(first, "orders", directory), migrate_service(second, "orders", directory)
        )
        applied = sorted((m.component, m.version) for result in results for m in result)
        assert applied == [("orders", 1), ("orders", 2), ("orders", 3), ("servicekit", 1), ("servicekit", 2), ("servicekit", 3), ("servicekit", 4)]
        assert await first.fetchval("SELECT count(*) FROM schema_migrations") == 7
    finally:
        await first.close()
        await second.close()


# --- outbox and inbox -----------------------------------------------------------------------------


async def outbox_rows(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT topic, key, headers, payload FROM outbox ORDER BY id")
    return [
        {
            "topic": r["topic"],
            "key": r["key"],
            "headers": dict(json.loads(r["headers"])),
            "header_names": [name for name, _ in json.loads(r["headers"])],
            "payload": r["payload"],
        }
        for r in rows
    ]


async def test_outbox_rows_keep_their_order_and_carry_type_version_and_trace_headers(pool) -> None:
    authorized = PaymentAuthorized.model_validate(payload("payment_authorized"))
    captured = PaymentCaptured(
        order_id=authorized.order_id,
        shop_id=authorized.shop_id,
        capture_id="cap_20250314_41d9aa",
        amount=9660,
        currency="JPY",
        **authorized.caused(),
    )
    async with pool.acquire() as conn, conn.transaction():
        await write_outbox(
            conn,
            [OutgoingMessage.of(topics.PAYMENTS_EVENTS, authorized), OutgoingMessage.of(topics.PAYMENTS_EVENTS, captured)],
        )
    first, second = await outbox_rows(pool)
    assert (first["topic"], first["key"]) == ("payments.events.v1", str(authorized.order_id).encode())
    assert second["key"] == str(authorized.order_id).encode()
    assert first["headers"]["type"] == "PaymentAuthorized"
    assert second["headers"]["type"] == "PaymentCaptured"
    assert first["headers"]["schema_version"] == "1"
    assert first["headers"]["correlation_id"] == str(authorized.correlation_id)
    assert first["headers"]["traceparent"] == (
        f"00-{authorized.correlation_id.hex}-{authorized.event_id.hex[:16]}-01"
    )
    assert second["headers"]["traceparent"].startswith(f"00-{authorized.correlation_id.hex}-")
    assert PaymentAuthorized.model_validate_json(first["payload"]) == authorized
    assert PaymentCaptured.model_validate_json(second["payload"]) == captured


async def test_a_unit_of_works_outbox_rows_go_in_one_statement_in_their_order_with_keyless_ones_kept(pool) -> None:
    authorized = PaymentAuthorized.model_validate(payload("payment_authorized"))
    rejected = OrderRejected(shop_id="kyoto-tea", channel="yahoo", external_order_no="YH-88213", reasons=["total"])
    messages = [
        OutgoingMessage.of(topics.PAYMENTS_EVENTS if n % 3 else topics.SHOP_UPDATES, authorized if n % 3 else rejected)
        for n in range(40)
    ]
    assert None in {message.key for message in messages}
    statements: list[str] = []

    def count(query: Any) -> None:
        statements.append(query.query)

    async with pool.acquire() as conn, conn.transaction():
        conn.add_query_logger(count)
        await write_outbox(conn, messages)
        await asyncio.sleep(0)  # query loggers are called soon after each query
        conn.remove_query_logger(count)
    rows = await outbox_rows(pool)
    assert [row["topic"] for row in rows] == [message.topic for message in messages]
    assert [row["key"] for row in rows] == [message.key for message in messages]
    assert [row["headers"]["type"] for row in rows] == [dict(message.headers)["type"].decode() for message in messages]
    assert len([query for query in statements if "INSERT INTO outbox" in query]) == 1


async def test_an_explicit_key_overrides_the_order_id(pool) -> None:
    rejected = OrderRejected(shop_id="kyoto-tea", channel="yahoo", external_order_no="YH-88213", reasons=["total"])
    async with pool.acquire() as conn, conn.transaction():
        await write_outbox(conn, [OutgoingMessage.of(topics.SHOP_UPDATES, rejected, key="YH-88213")])
    [row] = await outbox_rows(pool)
    assert row["key"] == b"YH-88213"


async def test_outbox_rows_written_in_a_rolled_back_transaction_disappear(pool) -> None:
    authorized = PaymentAuthorized.model_validate(payload("payment_authorized"))
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await write_outbox(conn, [OutgoingMessage.of(topics.PAYMENTS_EVENTS, authorized)])
            raise RuntimeError("boom")
    assert await outbox_rows(pool) == []


def context(pool: asyncpg.Pool, message_id: UUID) -> MessageContext:
    return MessageContext(pool, message_id, topics.PAYMENTS_EVENTS, log=None)


async def test_a_second_unit_of_work_for_the_same_message_is_refused_and_changes_nothing(pool) -> None:
    message_id = uuid4()
    authorized = PaymentAuthorized.model_validate(payload("payment_authorized"))
    for attempt in range(2):
        try:
            async with context(pool, message_id).unit_of_work() as uow:
                await uow.conn.execute("INSERT INTO changes VALUES ('authorized')")
                uow.publish(topics.PAYMENTS_EVENTS, authorized)
        except DuplicateMessage:
            assert attempt == 1
        else:
            assert attempt == 0
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE message_id = $1", message_id) == 1
    assert await pool.fetchval("SELECT count(*) FROM changes") == 1
    assert len(await outbox_rows(pool)) == 1
    assert await context(pool, message_id).already_processed()
    assert not await context(pool, uuid4()).already_processed()


async def test_an_error_inside_the_unit_of_work_rolls_back_the_change_the_outbox_and_the_inbox_row(pool) -> None:
    message_id = uuid4()
    authorized = PaymentAuthorized.model_validate(payload("payment_authorized"))
    with pytest.raises(ValueError):
        async with context(pool, message_id).unit_of_work() as uow:
            await uow.conn.execute("INSERT INTO changes VALUES ('authorized')")
            uow.publish(topics.PAYMENTS_EVENTS, authorized)
            raise ValueError("gateway answered nonsense")
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 0
    assert await pool.fetchval("SELECT count(*) FROM changes") == 0
    assert await outbox_rows(pool) == []
    async with context(pool, message_id).unit_of_work() as uow:
        await uow.conn.execute("INSERT INTO changes VALUES ('authorized')")
    assert await pool.fetchval("SELECT count(*) FROM changes") == 1


async def test_a_unit_of_work_writes_its_inbox_row_and_outbox_rows_in_one_statement_and_a_repeat_writes_neither(
    pool, fresh_database: str
) -> None:
    message_id = uuid4()
    authorized = PaymentAuthorized.model_validate(payload("payment_authorized"))
    captured = PaymentCaptured.model_validate({**payload("payment_authorized"), "type": "PaymentCaptured", "capture_id": "cap_1"})
    statements: list[str] = []
    pool_of_one = await asyncpg.create_pool(fresh_database, min_size=1, max_size=1, reset=keep_session)
    try:
        async with pool_of_one.acquire() as conn:
            conn.add_query_logger(lambda query: statements.append(" ".join(query.query.split())))
        for attempt in range(2):
            try:
                async with context(pool_of_one, message_id).unit_of_work() as uow:
                    await uow.conn.execute("INSERT INTO changes VALUES ($1)", f"attempt {attempt}")
                    uow.publish(topics.PAYMENTS_EVENTS, authorized)
                    uow.publish(topics.PAYMENTS_EVENTS, captured)
            except DuplicateMessage:
                assert attempt == 1
            else:
                assert attempt == 0
        await asyncio.sleep(0)
    finally:
        await pool_of_one.close()
    assert await pool.fetchval("SELECT array_agg(what) FROM changes") == ["attempt 0"]
    assert [row["headers"]["type"] for row in await outbox_rows(pool)] == [
        "PaymentAuthorized", "PaymentCaptured",
    ]
    writes = [query for query in statements if "INTO inbox" in query or "INTO outbox" in query]
    assert len(writes) == 2 and all("INTO inbox" in query and "INTO outbox" in query for query in writes), statements


async def test_effects_written_with_the_inbox_row_take_effect_once_and_only_with_a_new_inbox_row(pool) -> None:
    message_id = uuid4()
    authorized = OutgoingMessage.of(topics.PAYMENTS_EVENTS, PaymentAuthorized.model_validate(payload("payment_authorized")))
    effects = (
        "changed AS (INSERT INTO changes SELECT $1 || ' ' || $2::bigint WHERE EXISTS (SELECT FROM seen)),"
        " also AS (INSERT INTO changes SELECT 'also' WHERE EXISTS (SELECT FROM seen))"
    )
    async with pool.acquire() as conn:
        first = await record_handled(conn, message_id, topics.PAYMENTS_EVENTS, [authorized], effects, ("captured", 2500))
        again = await record_handled(conn, message_id, topics.PAYMENTS_EVENTS, [authorized], effects, ("captured", 2500))
        alone = await record_handled(conn, uuid4(), topics.PAYMENTS_EVENTS, [], effects, ("refunded", 0))
    assert (first, again, alone) == (True, False, True)
    assert sorted(await pool.fetchval("SELECT array_agg(what) FROM changes")) == ["also", "also", "captured 2500", "refunded 0"]
    assert [row["headers"]["type"] for row in await outbox_rows(pool)] == ["PaymentAuthorized"]
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE message_id = $1", message_id) == 1


async def test_a_unit_of_work_in_one_statement_takes_effect_once_and_finds_a_message_seen_before_a_duplicate(pool) -> None:
    message_id = uuid4()
    authorized = OutgoingMessage.of(topics.PAYMENTS_EVENTS, PaymentAuthorized.model_validate(payload("payment_authorized")))
    effects = "changed AS (INSERT INTO changes SELECT $1 WHERE EXISTS (SELECT FROM seen))"
    await context(pool, message_id).handled_in_one_statement([authorized], effects, ["captured"])
    with pytest.raises(DuplicateMessage):
        await context(pool, message_id).handled_in_one_statement([authorized], effects, ["again"])
    await context(pool, uuid4()).handled_in_one_statement()
    assert await pool.fetchval("SELECT array_agg(what) FROM changes") == ["captured"]
    assert [row["headers"]["type"] for row in await outbox_rows(pool)] == ["PaymentAuthorized"]
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 2


async def test_a_statement_of_its_own_writes_the_inbox_and_outbox_rows_only_when_its_condition_holds(pool) -> None:
    authorized = OutgoingMessage.of(topics.PAYMENTS_EVENTS, PaymentAuthorized.model_validate(payload("payment_authorized")))
    handled = {}
    for decided in (False, True):
        message_id = uuid4()
        rows, arguments = handled_rows(2, message_id, topics.PAYMENTS_EVENTS, [authorized], when="(SELECT go FROM decided)")
        handled[decided] = await pool.fetchval(
            f"WITH decided AS (SELECT $1::bool AS go), {rows} SELECT EXISTS (SELECT FROM seen)", decided, *arguments
        )
    assert handled == {False: False, True: True}
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 1
    assert [row["headers"]["type"] for row in await outbox_rows(pool)] == ["PaymentAuthorized"]


async def test_a_handler_failing_on_a_message_the_inbox_holds_is_a_duplicate_not_a_failure(pool) -> None:
    handler, metrics = Recorder(), Metrics("test")
    valid = record(encoded(payload("payment_authorized")))
    await consumer(pool, handler, metrics).process([valid])
    # redelivered, the handler finds the order moved on and refuses it: that is the first delivery's effect
    handler.fail_with = [PermanentError("the authorization is already recorded")]
    await consumer(pool, handler, metrics).process([valid])
    assert (outcome_count(metrics, "processed"), outcome_count(metrics, "duplicate")) == (1, 1)
    assert outcome_count(metrics, "dead_lettered") == 0
    assert await dead_letters(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM changes") == 1


async def test_a_failing_handler_whose_message_is_new_still_fails(pool) -> None:
    handler, metrics = Recorder(fail_with=[PermanentError("no order 8e0f4c3b")] * 5), Metrics("test")
    await consumer(pool, handler, metrics).process([record(encoded(payload("payment_authorized")))])
    assert outcome_count(metrics, "duplicate") == 0
    [letter] = await dead_letters(pool)
    assert_dead_letter_headers(letter, "PermanentError")
    assert await pool.fetchval("SELECT count(*) FROM changes") == 0


# --- the consumer ---------------------------------------------------------------------------------




def record(value: bytes | None, offset: int = 41, topic: str = topics.PAYMENTS_EVENTS) -> FakeRecord:
    return FakeRecord(
        topic=topic,
        partition=2,
        offset=offset,
        key=b"8e0f4c3b-2a1d-5e6f-9a8b-7c6d5e4f3a2b",
        value=value,
        headers=[("type", b"PaymentAuthorized"), ("dlq.error_class", b"stale")],
    )


def encoded(raw: dict[str, Any]) -> bytes:
    return json.dumps(raw, ensure_ascii=False).encode()


class Recorder:
    """A handler that applies its effect inside the unit of work and counts calls and effects."""

    def __init__(self, fail_with: list[BaseException] | None = None) -> None:
        self.calls = 0
        self.effects = 0
        self.fail_with = list(fail_with or [])

    async def __call__(self, message: PaymentAuthorized, ctx: MessageContext) -> None:
        self.calls += 1
        async with ctx.unit_of_work() as uow:
            await uow.conn.execute("INSERT INTO changes VALUES ($1)", message.authorization_id)
            if self.fail_with:
                raise self.fail_with.pop(0)
            self.effects += 1


def rejection_hook(raw: Mapping[str, Any] | None, reasons: list[str]) -> list[OutgoingMessage]:
    if not raw:
        return []
    rejection = OrderRejected(shop_id=raw["shop_id"], external_order_no="YH-88213", reasons=reasons)
    return [OutgoingMessage.of(topics.SHOP_UPDATES, rejection, key="YH-88213")]


def consumer(pool: asyncpg.Pool, handler: Recorder, metrics: Metrics, on_invalid=None) -> Consumer:
    subscription = Subscription(
        topics.PAYMENTS_EVENTS, PaymentsEvent, {PaymentAuthorized: handler}, on_invalid=on_invalid
    )
    return Consumer(
        subscription, group_id="orders", pool_provider=lambda: pool, metrics=metrics, retry_max_seconds=0.4
    )


def outcome_count(metrics: Metrics, outcome: str) -> float:
    return metrics.registry.get_sample_value(
        "ordermesh_messages_total", {"topic": topics.PAYMENTS_EVENTS, "outcome": outcome}
    ) or 0.0


async def test_a_valid_record_takes_effect_once_even_when_it_is_processed_twice(pool) -> None:
    handler, metrics = Recorder(), Metrics("test")
    valid = record(encoded(payload("payment_authorized")))
    await consumer(pool, handler, metrics).process([valid])
    await consumer(pool, handler, metrics).process([valid])
    # the second time the handler's work is done and rolled back: the inbox row is written last, with the outbox rows
    assert await pool.fetchval("SELECT count(*) FROM changes") == 1
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 1
    assert await outbox_rows(pool) == []
    assert (outcome_count(metrics, "processed"), outcome_count(metrics, "duplicate")) == (1, 1)


async def test_a_contract_of_the_topic_without_a_handler_is_skipped_quietly(pool) -> None:
    handler, metrics = Recorder(), Metrics("test")
    captured = {**payload("payment_authorized"), "type": "PaymentCaptured", "capture_id": "cap_1"}
    for key in ("method", "authorization_id"):
        captured.pop(key)
    await consumer(pool, handler, metrics).process([record(encoded(captured))])
    assert handler.calls == 0
    assert await outbox_rows(pool) == []
    assert outcome_count(metrics, "skipped") == 1


async def dead_letters(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    return [row for row in await outbox_rows(pool) if row["topic"] == "payments.events.v1.dlq"]


def assert_dead_letter_headers(row: dict[str, Any], error_class: str, offset: int = 41) -> None:
    headers = row["headers"]
    assert headers["dlq.original_topic"] == "payments.events.v1"
    assert headers["dlq.original_partition"] == "2"
    assert headers["dlq.original_offset"] == str(offset)
    assert headers["dlq.consumer_group"] == "orders"
    assert headers["dlq.error_class"] == error_class
    assert headers["dlq.error_message"]
    assert EMAIL not in headers["dlq.error_message"]
    assert headers["type"] == "PaymentAuthorized"
    assert "dlq.failed_at" in headers
    assert row["header_names"].count("dlq.error_class") == 1


@pytest.mark.parametrize(
    ("value", "error_class"),
    [
        (b"{not json", "InvalidJson"),
        (b"", "InvalidJson"),
        (b"\x80\x81 binary junk", "InvalidJson"),
        (b'["PaymentAuthorized"]', "MissingType"),
        (b'{"type": 7}', "MissingType"),
    ],
)
async def test_a_record_that_is_not_a_json_message_goes_to_the_dead_letter_topic_once(
    pool, value: bytes, error_class: str
) -> None:
    handler, metrics = Recorder(), Metrics("test")
    bad = record(value)
    await consumer(pool, handler, metrics).process([bad])
    await consumer(pool, handler, metrics).process([bad])
    [letter] = await dead_letters(pool)
    assert_dead_letter_headers(letter, error_class)
    assert letter["payload"] == value
    assert letter["key"] == bad.key
    assert handler.calls == 0
    assert outcome_count(metrics, "dead_lettered") == 2


async def test_a_record_that_breaks_the_contract_is_dead_lettered_with_readable_reasons_but_no_personal_data(
    pool,
) -> None:
    handler, metrics = Recorder(), Metrics("test")
    await consumer(pool, handler, metrics).process([record(encoded(payload("payment_authorized_invalid")))])
    [letter] = await dead_letters(pool)
    assert_dead_letter_headers(letter, "ContractViolation")
    message = letter["headers"]["dlq.error_message"]
    assert "amount:" in message
    assert "customer_email" not in message  # an unknown field of an event is ignored (tolerant reader)
    assert "9660 yen" not in message
    assert handler.calls == 0


async def test_an_unknown_message_type_is_dead_lettered(pool) -> None:
    handler, metrics = Recorder(), Metrics("test")
    unknown = {**payload("payment_authorized"), "type": "PaymentTeleported"}
    await consumer(pool, handler, metrics).process([record(encoded(unknown))])
    [letter] = await dead_letters(pool)
    assert_dead_letter_headers(letter, "UnknownMessageType")
    assert "'PaymentTeleported'" in letter["headers"]["dlq.error_message"]


async def test_a_handler_that_keeps_raising_is_dead_lettered_after_its_attempts_without_its_change_or_the_email(
    pool,
) -> None:
    handler = Recorder(fail_with=[ValueError(f"customer {EMAIL} has no card on file")] * 3)
    await consumer(pool, handler, Metrics("test")).process([record(encoded(payload("payment_authorized")))])
    [letter] = await dead_letters(pool)
    assert_dead_letter_headers(letter, "ValueError")
    assert letter["headers"]["dlq.error_message"] == "customer [redacted] has no card on file"
    assert await pool.fetchval("SELECT count(*) FROM changes") == 0
    assert handler.calls == 3


async def test_a_permanent_error_is_dead_lettered_under_its_own_class(pool) -> None:
    handler = Recorder(fail_with=[PermanentError("no order 8e0f4c3b")])
    await consumer(pool, handler, Metrics("test")).process([record(encoded(payload("payment_authorized")))])
    [letter] = await dead_letters(pool)
    assert_dead_letter_headers(letter, "PermanentError")
    assert letter["headers"]["dlq.error_message"] == "no order 8e0f4c3b"


async def test_a_transient_error_is_retried_until_the_handler_succeeds_once(pool) -> None:
    handler, metrics = Recorder(fail_with=[TransientError("gateway 503"), TransientError("gateway 503")]), Metrics("test")
    await consumer(pool, handler, metrics).process([record(encoded(payload("payment_authorized")))])
    assert handler.calls == 3
    assert handler.effects == 1
    assert await pool.fetchval("SELECT count(*) FROM changes") == 1
    assert await dead_letters(pool) == []
    assert metrics.registry.get_sample_value("ordermesh_transient_retries_total") == 2
    assert outcome_count(metrics, "processed") == 1


async def test_one_bad_record_does_not_stop_the_ones_after_it(pool) -> None:
    handler = Recorder()
    await consumer(pool, handler, Metrics("test")).process(
        [record(b"{not json", offset=40), record(encoded(payload("payment_authorized")), offset=41)]
    )
    assert handler.effects == 1
    [letter] = await dead_letters(pool)
    assert letter["headers"]["dlq.original_offset"] == "40"


async def test_the_invalid_message_hook_writes_its_messages_together_with_the_dead_letter(pool) -> None:
    handler = Recorder()
    raw = payload("payment_authorized_invalid")
    await consumer(pool, handler, Metrics("test"), on_invalid=rejection_hook).process([record(encoded(raw))])
    await consumer(pool, handler, Metrics("test"), on_invalid=rejection_hook).process([record(encoded(raw))])
    rows = await outbox_rows(pool)
    assert [row["topic"] for row in rows] == ["payments.events.v1.dlq", "shop.updates.v1"]
    rejection = OrderRejected.model_validate_json(rows[1]["payload"])
    assert rejection.shop_id == "kyoto-tea"
    assert any(reason.startswith("amount:") for reason in rejection.reasons)
    assert rows[1]["key"] == b"YH-88213"


async def test_a_requeued_row_goes_back_to_the_end_of_the_outbox_once_and_a_discarded_one_stays_with_its_reason(conn, tmp_path: Path) -> None:
    await migrate_service(conn, "orders", write_migrations(tmp_path / "m", SERVICE_MIGRATIONS))
    for row_id, payload in ((7, b"seven"), (9, b"nine")):
        await conn.execute(
            "INSERT INTO outbox_failed (id, topic, key, headers, payload, created_at, error) VALUES ($1, 't.v1', 'k', '[[\"type\", \"X\"]]', $2, now(), 'too large')",
            row_id, payload,
        )
    await conn.execute("INSERT INTO outbox (topic, payload) VALUES ('t.v1', 'waiting')")
    assert await outbox_failed.pending_count(conn) == 2
    [listed, _] = await outbox_failed.failed_rows(conn)
    assert (listed["id"], listed["type"], listed["key"], listed["size"], listed["status"]) == (7, "X", "k", 5, "pending")

    [done] = await outbox_failed.requeue(conn, [7], by="staff", reason="limit raised")
    assert await outbox_failed.requeue(conn, [7], by="staff") == []  # once
    assert [r["payload"] for r in await conn.fetch("SELECT payload FROM outbox ORDER BY id")] == [b"waiting", b"seven"]
    assert done["requeued_as"] == await conn.fetchval("SELECT max(id) FROM outbox")
    with_reason = await outbox_failed.discard(conn, None, by="staff", reason="not needed")
    assert with_reason == [9] and await outbox_failed.pending_count(conn) == 0
    decided = {r["id"]: r for r in await outbox_failed.failed_rows(conn, None)}
    assert (decided[7]["status"], decided[7]["reason"], decided[9]["status"], decided[9]["reason"]) == (
        "requeued", "limit raised", "discarded", "not needed"
    )
