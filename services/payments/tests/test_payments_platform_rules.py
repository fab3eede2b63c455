"""The pure rules of payments no gateway takes part in: an order paid on its sales platform (cancelled, edited) and an
order with nothing to pay (settled once shipped)."""

from dataclasses import replace

import pytest
from ordermesh_payments.domain.cancellation import Action, CancelPlan, PaymentFacts, plan_cancellation
from ordermesh_payments.domain.edits import EditAction, EditFacts, plan_edit
from ordermesh_payments.domain.payment import platform_reference, settles_with_nothing_to_pay

PLATFORM = EditFacts(
    method="platform", status="captured", amount=7910, authorized=0, authorization_id=None, captured=7910,
    refunded=0, received=0, cancelled=False, edit_no=0,
)


def test_the_platform_reference_names_the_channel_and_the_order_number_there() -> None:
    assert platform_reference("shopify", "5678901234567890123") == "platform:shopify:5678901234567890123"


def test_cancelling_a_platform_payment_reverses_nothing_here_and_owes_back_what_the_platform_took() -> None:
    facts = PaymentFacts("platform", "captured", amount=7910, authorized=0, captured=7910, refunded=0, received=0)
    plan = plan_cancellation(facts, cancel_payment=True)
    assert (plan.action, plan.outcome, plan.amount, plan.refund_owed) == (Action.RECORD, "nothing_to_cancel", 0, 7910)
    assert plan_cancellation(facts, cancel_payment=False) == CancelPlan(Action.SILENT)


def test_a_lower_total_paid_on_the_platform_updates_the_amount_and_keeps_the_difference_as_a_refund_owed() -> None:
    plan = plan_edit(PLATFORM, 1, 6000)
    assert (plan.action, plan.outcome, plan.previous_amount, plan.amount) == (EditAction.RECORD, "request_updated", 7910, 6000)
    assert (plan.refund_owed, plan.refunded, plan.balance_due) == (1910, 0, 0)


def test_a_higher_total_paid_on_the_platform_asks_for_the_balance() -> None:
    plan = plan_edit(PLATFORM, 1, 9000)
    assert (plan.action, plan.outcome, plan.amount, plan.balance_due, plan.refund_owed) == (
        EditAction.RECORD, "balance_requested", 9000, 1090, 0,
    )


def test_a_second_edit_back_to_what_the_platform_took_leaves_nothing_owed_either_way() -> None:
    lowered = replace(PLATFORM, amount=6000, edit_no=1)
    plan = plan_edit(lowered, 2, 7910)
    assert (plan.outcome, plan.refund_owed, plan.balance_due, plan.amount) == ("nothing_to_change", 0, 0, 7910)


def test_a_platform_order_with_nothing_taken_asks_for_all_of_a_raised_total() -> None:
    free = replace(PLATFORM, status="not_applicable", amount=0, captured=0)
    plan = plan_edit(free, 1, 500)
    assert (plan.outcome, plan.balance_due) == ("balance_requested", 500)


@pytest.mark.parametrize(
    ("status", "amount", "cancelled", "settles"),
    [
        ("not_applicable", 0, False, True),
        ("not_applicable", 0, True, False),
        ("captured", 0, False, False),
        ("not_applicable", 500, False, False),
        ("authorized", 0, False, False),
        ("awaiting_delivery", 0, False, False),
    ],
)
def test_only_an_order_with_nothing_at_stake_and_not_yet_settled_or_cancelled_settles_with_nothing_to_pay(
    status: str, amount: int, cancelled: bool, settles: bool
) -> None:
    assert settles_with_nothing_to_pay(status, amount, cancelled) is settles
