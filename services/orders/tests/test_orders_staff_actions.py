"""Staff actions on an order's progress and the tasks flags open: pure domain, no I/O."""

import pytest
from ordermesh_contracts import PaymentMethod, Stage
from ordermesh_orders.domain.progress import OrderState, initial_flags
from ordermesh_orders.domain.staff import (
    Refusal,
    confirm_flag,
    hold,
    release,
    resume_auto,
    set_stage,
)
from ordermesh_orders.domain.tasks import (
    TASK_KINDS,
    flag_confirmed_by_closing,
    tasks_opened_by,
)


def _card_order(stage=Stage.REVIEW, **flags) -> OrderState:
    return OrderState(stage=stage, payment_method=PaymentMethod.CARD, flags={**initial_flags(PaymentMethod.CARD, "ok"), **flags})


def test_a_held_order_returns_to_its_stage_and_moves_on_when_released():
    held = hold(_card_order(Stage.AWAITING_PAYMENT, card_authorization="authorized")).state
    assert (held.stage, held.held_from) == (Stage.ON_HOLD, Stage.AWAITING_PAYMENT)
    released = release(held)
    assert released.transitions[0] == (Stage.ON_HOLD, Stage.AWAITING_PAYMENT)
    assert released.state.stage is Stage.AWAITING_ALLOCATION and released.state.held_from is None


@pytest.mark.parametrize("stage", [Stage.COMPLETED, Stage.CANCELLED, Stage.ON_HOLD])
def test_completed_cancelled_or_held_orders_cannot_be_held(stage):
    with pytest.raises(Refusal):
        hold(_card_order(stage))


def test_releasing_an_order_that_is_not_held_is_refused():
    with pytest.raises(Refusal, match="not on hold"):
        release(_card_order())


def test_a_manual_stage_switches_to_manual_mode_and_resume_auto_moves_on_by_the_flags():
    manual = set_stage(_card_order(Stage.REVIEW, address="error"), Stage.AWAITING_PAYMENT).state
    assert (manual.stage, manual.mode) == (Stage.AWAITING_PAYMENT, "manual")
    resumed = resume_auto(manual.__class__(**{**manual.__dict__, "flags": {**manual.flags, "card_authorization": "authorized"}}))
    assert resumed.state.mode == "auto" and resumed.state.stage is Stage.AWAITING_ALLOCATION


def test_resume_auto_on_an_automatic_order_is_refused():
    with pytest.raises(Refusal, match="already in automatic mode"):
        resume_auto(_card_order())


def test_set_stage_refuses_hold_and_cancel_which_have_their_own_commands():
    with pytest.raises(Refusal):
        set_stage(_card_order(), Stage.CANCELLED)


def test_confirming_the_address_lets_a_review_order_move_on():
    progress = confirm_flag(_card_order(address="error"), "address")
    assert progress.state.flags["address"] == "confirmed" and progress.state.stage is Stage.AWAITING_PAYMENT


def test_only_checked_flags_can_be_confirmed_by_staff():
    with pytest.raises(Refusal):
        confirm_flag(_card_order(), "capture")


def test_a_blocking_task_keeps_the_order_in_review_even_with_good_flags():
    state = _card_order()
    blocked = state.__class__(**{**state.__dict__, "blocking_tasks": 1})
    assert resume_auto(blocked.__class__(**{**blocked.__dict__, "mode": "manual"})).state.stage is Stage.REVIEW


def test_flags_open_the_matching_tasks_and_a_failed_mail_opens_one_mail_task():
    assert tasks_opened_by({"address": "error", "customer": "watch_listed"}) == ["address_may_be_wrong", "watch_listed_customer"]
    assert tasks_opened_by({"mail_shipped": "failed"}) == ["mail_failed"]
    assert tasks_opened_by({"address": "ok", "mail_shipped": "sent"}) == []


def test_closing_a_check_task_confirms_its_flag_and_other_tasks_confirm_nothing():
    assert flag_confirmed_by_closing("address_may_be_wrong") == "address"
    assert flag_confirmed_by_closing("watch_listed_customer") == "customer"
    assert flag_confirmed_by_closing("payment_failed") is None
    assert all(kind.title for kind in TASK_KINDS.values())


def test_checks_of_unshipped_deliveries_stop_applying_once_the_order_has_shipped():
    from ordermesh_orders.domain.progress import record_flags

    shipped = _card_order(Stage.SHIPPED, shipping="shipped", capture="not_yet")
    progress = record_flags(shipped, {"address": "error", "delivery_date": "error", "capture": "done"})
    assert progress.state.flags["address"] == "ok" and progress.state.flags["delivery_date"] == "ok"
    assert progress.state.flags["capture"] == "done"
    unshipped = record_flags(_card_order(Stage.AWAITING_PAYMENT), {"address": "error"})
    assert unshipped.state.flags["address"] == "error"


def test_an_unshipped_order_can_be_cancelled_and_the_flags_show_which_reversals_were_asked_for():
    from ordermesh_orders.domain.staff import cancel

    progress = cancel(_card_order(Stage.SHIPPING, shipping="requested"), restore_stock=True, cancel_payment=False, notify_customer=True)
    assert progress.transitions == [(Stage.SHIPPING, Stage.CANCELLED)]
    flags = progress.state.flags
    assert (flags["stock_release"], flags["payment_cancellation"], flags["mail_order_cancelled"]) == ("pending", "not_requested", "unsent")


@pytest.mark.parametrize(
    ("stage", "shipping", "reason"),
    [
        (Stage.SHIPPED, "shipped", "a shipped order can't be cancelled"),
        (Stage.COMPLETED, "shipped", "a completed order can't be cancelled"),
        (Stage.CANCELLED, "unshipped", "a cancelled order can't be cancelled"),
        (Stage.SHIPPING, "partly_shipped", "part of the order has shipped: record a return instead"),
    ],
)
def test_an_order_that_has_shipped_or_ended_cannot_be_cancelled(stage, shipping, reason):
    from ordermesh_orders.domain.staff import cancel

    with pytest.raises(Refusal) as refused:
        cancel(_card_order(stage, shipping=shipping), restore_stock=True, cancel_payment=True, notify_customer=True)
    assert refused.value.reasons == [reason]
