"""Decoding a record: what the `type` header lets a service skip unread, and what still goes the whole way."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ordermesh_contracts import PaymentAuthorized, PaymentsEvent, topics
from ordermesh_servicekit.consuming import Subscription
from ordermesh_servicekit.decoding import DeadLetter, decode


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
