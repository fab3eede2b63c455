"""Which messages payments may apply in a batch's shared transaction: only those whose handling touches nothing but
the database; anything that may call a gateway or provider goes alone."""

import pytest
from ordermesh_contracts import (
    OrderAccepted,
    OrderCancelled,
    OrderEdited,
    OrderReturned,
    ProviderPaymentReported,
    ShipmentDelivered,
    ShipmentShipped,
)
from ordermesh_payments.handlers import goes_alone
from support import golden_message


def accepted(method: str, **changes) -> OrderAccepted:
    return OrderAccepted.model_validate(golden_message("OrderAccepted", payment={"method": method, "card_token": "tok_visa"}, **changes))


@pytest.mark.parametrize("method", ["card", "deferred"])
def test_an_order_paid_through_a_gateway_or_provider_is_accepted_alone(method: str) -> None:
    assert goes_alone(accepted(method))


@pytest.mark.parametrize("method", ["cash_on_delivery", "bank_transfer", "convenience_store", "platform", "points_only"])
def test_an_order_paid_without_a_gateway_is_accepted_in_a_batch(method: str) -> None:
    assert not goes_alone(accepted(method))


def test_a_card_order_with_nothing_to_pay_is_accepted_in_a_batch() -> None:
    charges = {**golden_message("OrderAccepted")["charges"], "total": 0}
    assert not goes_alone(accepted("card", charges=charges))


@pytest.mark.parametrize("model", [OrderCancelled, OrderEdited, OrderReturned, ShipmentShipped])
def test_cancellations_edits_returns_and_shipments_go_alone(model) -> None:
    assert goes_alone(model.model_validate(golden_message(model.__name__)))


def test_cash_collected_is_batched_and_a_delivery_without_cash_goes_alone_as_it_costs_nothing() -> None:
    delivered = ShipmentDelivered.model_validate(golden_message("ShipmentDelivered"))
    assert not goes_alone(delivered)
    assert goes_alone(delivered.model_copy(update={"cash_collected": None}))


def test_a_provider_payment_report_is_batched() -> None:
    assert not goes_alone(ProviderPaymentReported.model_validate(golden_message("ProviderPaymentReported")))
