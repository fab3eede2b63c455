"""What staff may do to an order's progress: hold, release, set a stage by hand, resume auto, confirm a flag."""

from dataclasses import replace

from ordermesh_contracts import Stage

from .progress import OrderState, Progress, advance

FINAL_STAGES = (Stage.COMPLETED, Stage.CANCELLED)
CONFIRMABLE_FLAGS = ("address", "delivery_date", "customer", "label_check")


class Refusal(Exception):
    """The action is not allowed for this order; the reasons say why."""

    def __init__(self, *reasons: str) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = list(reasons)


def hold(state: OrderState) -> Progress:
    """Puts the order on hold, remembering its stage."""
    if state.stage in FINAL_STAGES:
        raise Refusal(f"a {state.stage.value} order can't be held")
    if state.stage is Stage.ON_HOLD:
        raise Refusal("the order is already on hold")
    held = replace(state, stage=Stage.ON_HOLD, held_from=state.stage)
    return Progress(held, [(state.stage, Stage.ON_HOLD)])


def release(state: OrderState) -> Progress:
    """Takes the order off hold, back to the stage it was held at, then on as far as its flags allow."""
    if state.stage is not Stage.ON_HOLD or state.held_from is None:
        raise Refusal("the order is not on hold")
    released = replace(state, stage=state.held_from, held_from=None)
    onward = advance(released)
    return Progress(onward.state, [(Stage.ON_HOLD, state.held_from), *onward.transitions])


def set_stage(state: OrderState, stage: Stage) -> Progress:
    """Moves the order to a stage by hand; the order switches to manual mode and stops moving on its own."""
    if state.stage in FINAL_STAGES:
        raise Refusal(f"a {state.stage.value} order can't change stage")
    if stage in (Stage.ON_HOLD, Stage.CANCELLED):
        raise Refusal(f"use the {'hold' if stage is Stage.ON_HOLD else 'cancel'} command to reach {stage.value}")
    if stage is state.stage:
        return Progress(replace(state, mode="manual"), [])
    return Progress(replace(state, stage=stage, mode="manual", held_from=None), [(state.stage, stage)])


def resume_auto(state: OrderState) -> Progress:
    """Switches the order back to automatic progress and advances it as far as its flags allow."""
    if state.mode == "auto":
        raise Refusal("the order is already in automatic mode")
    return advance(replace(state, mode="auto"))


def confirm_flag(state: OrderState, flag: str) -> Progress:
    """Staff override: marks a checked flag (address, delivery date, customer) confirmed for good."""
    if flag not in CONFIRMABLE_FLAGS:
        raise Refusal(f"{flag} can't be confirmed by staff")
    if state.stage in FINAL_STAGES:
        raise Refusal(f"a {state.stage.value} order can't change")
    return advance(replace(state, flags={**state.flags, flag: "confirmed"}))


def hold_after(progress: Progress) -> Progress:
    """Holds the order where the progress left it (a rule asked for a hold)."""
    if progress.state.stage in (*FINAL_STAGES, Stage.ON_HOLD):
        return progress
    held = hold(progress.state)
    return Progress(held.state, [*progress.transitions, *held.transitions])


CANCELLABLE_STAGES = (
    Stage.REVIEW,
    Stage.AWAITING_PAYMENT,
    Stage.AWAITING_ALLOCATION,
    Stage.READY_TO_SHIP,
    Stage.SHIPPING,
    Stage.ON_HOLD,
)


def cancel(state: OrderState, *, restore_stock: bool, cancel_payment: bool, notify_customer: bool) -> Progress:
    """Cancels the whole order while nothing has shipped; the flags show which reversals were asked for.

    Each reversal is the owning service's job; until it answers, its flag is 'pending' (or 'not_requested')."""
    if state.stage not in CANCELLABLE_STAGES:
        raise Refusal(f"a {state.stage.value} order can't be cancelled")
    if state.flags.get("shipping") in ("partly_shipped", "shipped"):
        raise Refusal("part of the order has shipped: record a return instead")
    flags = {
        **state.flags,
        "payment_cancellation": "pending" if cancel_payment else "not_requested",
        "stock_release": "pending" if restore_stock else "not_requested",
        "shipping_cancellation": "pending",
        "mail_order_cancelled": "unsent" if notify_customer else "not_applicable",
    }
    cancelled = replace(state, stage=Stage.CANCELLED, flags=flags, held_from=None)
    return Progress(cancelled, [(state.stage, Stage.CANCELLED)])
