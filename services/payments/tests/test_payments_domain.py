"""The payments domain without I/O: what to authorize, and idempotency keys that survive redelivery."""

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from ordermesh_contracts import OrderAccepted
from ordermesh_payments.domain.payment import amount_to_authorize, idempotency_key

DATA = Path(__file__).parent / "data"


def card_order(**changes: Any) -> OrderAccepted:
    raw = json.loads((DATA / "order_accepted_card.json").read_text(encoding="utf-8"))
    for path, value in changes.items():
        section, field = path.split("__")
        raw[section][field] = value
    return OrderAccepted.model_validate(raw)


def test_a_card_order_authorizes_its_total_after_points_and_discounts() -> None:
    assert amount_to_authorize(card_order()) == 9660


@pytest.mark.parametrize("method", ["cash_on_delivery", "bank_transfer", "convenience_store", "deferred", "points_only"])
def test_an_order_not_paid_by_card_needs_no_authorization(method: str) -> None:
    assert amount_to_authorize(card_order(payment__method=method, payment__card_token=None)) is None


def test_a_card_order_paid_entirely_with_points_needs_no_authorization() -> None:
    assert amount_to_authorize(card_order(charges__points_used=9780, charges__total=0)) is None


def test_the_idempotency_key_is_the_same_for_the_same_event_and_operation() -> None:
    event_id = UUID("0a1b2c3d-4e5f-4a6b-8c7d-000000000002")
    assert idempotency_key(event_id, "authorize") == idempotency_key(UUID(str(event_id)), "authorize")


def test_the_idempotency_key_differs_per_operation_and_per_event() -> None:
    first = UUID("0a1b2c3d-4e5f-4a6b-8c7d-000000000002")
    second = UUID("0a1b2c3d-4e5f-4a6b-8c7d-000000000003")
    keys = {idempotency_key(first, "authorize"), idempotency_key(first, "capture"), idempotency_key(second, "authorize")}
    assert len(keys) == 3


def test_the_idempotency_key_is_a_uuid_string_a_gateway_accepts() -> None:
    key = idempotency_key(UUID("0a1b2c3d-4e5f-4a6b-8c7d-000000000002"), "authorize")
    assert str(UUID(key)) == key
    assert len(key) == 36
