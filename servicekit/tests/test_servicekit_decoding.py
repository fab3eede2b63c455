"""Decoding a record: what the `type` header (and a contract's header field) lets a service skip unread, and what still
goes the whole way."""

from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import pytest

from ordermesh_contracts import OrderProgressed, OrdersEvent, PaymentAuthorized, PaymentsEvent, Stage, topics
from ordermesh_servicekit.consuming import Subscription
from ordermesh_servicekit.decoding import DeadLetter, decode, skipped_unread
from ordermesh_servicekit.outbox import OutgoingMessage


async def _handler(message, ctx) -> None:  # pragma: no cover - never called here
    return None


SUBSCRIPTION = Subscription(topics.PAYMENTS_EVENTS, PaymentsEvent, {PaymentAuthorized: _handler})


@dataclass
class FakeRecord:
    value: bytes | None
    headers: list = field(default_factory=list)
    topic: str = topics.PAYMENTS_EVENTS
    partition: int = 0
    offset: int = 0
    key: bytes | None = None


def test_a_record_whose_type_header_names_a_contract_not_handled_is_skipped_without_reading_its_value() -> None:
    assert decode(FakeRecord(b"\xff not even json", [("type", b"PaymentCaptured")]), SUBSCRIPTION) is None


def test_a_record_without_a_type_header_is_skipped_only_after_its_value_is_read() -> None:
    assert decode(FakeRecord(b'{"type": "PaymentCaptured"}'), SUBSCRIPTION) is None
    with pytest.raises(DeadLetter) as letter:
        decode(FakeRecord(b"\xff not even json"), SUBSCRIPTION)
    assert letter.value.error_class == "InvalidJson"


@pytest.mark.parametrize(
    "headers",
    [
        [("type", None)],
        [("type", b"\xff\xfe")],
        [("type", b"NoSuchContract")],
        [("type", b"PaymentAuthorized")],
        [("type", "PaymentCaptured")],
        [("type",)],
        [("schema_version", b"1")],
    ],
    ids=["null", "not-utf8", "unknown-type", "handled-type", "text-not-bytes", "malformed-pair", "other-header"],
)
def test_a_record_whose_type_header_is_missing_odd_or_handled_goes_the_whole_way(headers) -> None:
    with pytest.raises(DeadLetter) as letter:
        decode(FakeRecord(b"\xff not even json", headers), SUBSCRIPTION)
    assert letter.value.error_class == "InvalidJson"


def test_a_handled_record_is_decoded_from_its_value_unless_its_header_names_a_contract_not_handled() -> None:
    value = (Path(__file__).parent / "data" / "payment_authorized.json").read_bytes()
    for headers in ([], [("type", b"PaymentAuthorized")], [("type", b"NoSuchContract")]):
        assert isinstance(decode(FakeRecord(value, headers), SUBSCRIPTION), PaymentAuthorized)
    assert decode(FakeRecord(value, [("type", b"PaymentAuthorizationFailed")]), SUBSCRIPTION) is None


async def _progressed(message, ctx) -> None:  # pragma: no cover - never called here
    return None


READY_ONLY = Subscription(
    topics.ORDERS_EVENTS, OrdersEvent, {OrderProgressed: _progressed}, only={OrderProgressed: {Stage.READY_TO_SHIP}}
)


def _progressed_to(stage: Stage) -> bytes:
    return OrderProgressed(order_id=uuid4(), shop_id="shop-1", from_stage=Stage.REVIEW, to_stage=stage).model_dump_json().encode()


def test_a_published_message_carries_its_contracts_header_field_and_others_carry_none() -> None:
    headers = dict(OutgoingMessage.of(topics.ORDERS_EVENTS, OrderProgressed.read_json(_progressed_to(Stage.SHIPPED))).headers)
    assert headers["to_stage"] == b"shipped"
    authorized = PaymentAuthorized.read_json((Path(__file__).parent / "data" / "payment_authorized.json").read_bytes())
    assert {name for name, _ in OutgoingMessage.of(topics.PAYMENTS_EVENTS, authorized).headers} == {
        "type", "schema_version", "correlation_id", "traceparent"
    }


def test_a_record_whose_header_field_holds_an_unwanted_value_is_skipped_without_reading_its_value() -> None:
    headers = [("type", b"OrderProgressed"), ("to_stage", b"shipped")]
    assert decode(FakeRecord(b"\xff not even json", headers, topics.ORDERS_EVENTS), READY_ONLY) is None


def test_a_record_whose_header_field_holds_a_wanted_value_is_read_and_handled() -> None:
    value = _progressed_to(Stage.READY_TO_SHIP)
    headers = [("type", b"OrderProgressed"), ("to_stage", b"ready_to_ship")]
    assert decode(FakeRecord(value, headers, topics.ORDERS_EVENTS), READY_ONLY).to_stage is Stage.READY_TO_SHIP
    with pytest.raises(DeadLetter) as letter:
        decode(FakeRecord(b"\xff not even json", headers, topics.ORDERS_EVENTS), READY_ONLY)
    assert letter.value.error_class == "InvalidJson"


@pytest.mark.parametrize(
    "headers",
    [
        [("type", b"OrderProgressed")],
        [("type", b"OrderProgressed"), ("to_stage", None)],
        [("type", b"OrderProgressed"), ("to_stage", b"\xff\xfe")],
        [("type", b"OrderProgressed"), ("to_stage",)],
        [("type", b"OrderProgressed"), ("to_stage", "shipped")],
        [],
    ],
    ids=["no-field-header", "null", "not-utf8", "malformed-pair", "text-not-bytes", "no-headers"],
)
def test_without_a_usable_header_field_the_read_value_decides(headers) -> None:
    record = FakeRecord(_progressed_to(Stage.SHIPPED), headers, topics.ORDERS_EVENTS)
    assert decode(record, READY_ONLY) is None
    record = FakeRecord(_progressed_to(Stage.READY_TO_SHIP), headers, topics.ORDERS_EVENTS)
    assert decode(record, READY_ONLY).to_stage is Stage.READY_TO_SHIP


def test_a_header_field_filter_needs_a_handled_contract_with_a_header_field() -> None:
    with pytest.raises(ValueError, match="HEADER_FIELD"):
        Subscription(topics.PAYMENTS_EVENTS, PaymentsEvent, {PaymentAuthorized: _handler}, only={PaymentAuthorized: {"x"}})
    with pytest.raises(ValueError, match="HEADER_FIELD"):
        Subscription(topics.ORDERS_EVENTS, OrdersEvent, {}, only={OrderProgressed: {Stage.SHIPPED}})


@pytest.mark.parametrize(
    ("headers", "skipped"),
    [
        ([("type", b"OrderCompleted")], True),
        ([("type", b"OrderProgressed"), ("to_stage", b"shipped")], True),
        ([("type", b"OrderProgressed"), ("to_stage", b"ready_to_ship")], False),
        ([("type", b"OrderProgressed")], False),
        ([("type", b"OrderProgressed"), ("to_stage", b"\xff")], False),
        ([("type", b"NoSuchContract")], False),
        ([("type", None)], False),
        (None, False),
    ],
    ids=["contract-not-handled", "unwanted-stage", "wanted-stage", "no-field-header", "odd-field-header",
         "unknown-type", "null-type", "no-headers"],
)
def test_what_the_headers_alone_let_a_consumer_skip(headers, skipped) -> None:
    assert skipped_unread(FakeRecord(b"\xff not even json", headers, topics.ORDERS_EVENTS), READY_ONLY) is skipped
