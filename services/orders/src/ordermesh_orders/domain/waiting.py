"""What an order waits for to move on: each flag (or staff decision) its stage still needs, and who owns it."""

from dataclasses import dataclass

from ordermesh_contracts import PaymentMethod, Stage

from .progress import MAIL_DONE, PREPAID, OrderState

FINAL_STAGES = frozenset({Stage.COMPLETED, Stage.CANCELLED})


@dataclass(frozen=True)
class Wait:
    """One thing the order waits for: the flag, its value now, the service (or staff) that moves it, and what for."""

    flag: str
    value: str
    owner: str
    what: str

    def as_json(self) -> dict[str, str]:
        """For read APIs."""
        return {"flag": self.flag, "value": self.value, "owner": self.owner, "what": self.what}


def _flag(state: OrderState, name: str, done: tuple[str, ...], owner: str, what: str) -> list[Wait]:
    value = state.flags.get(name, "not_applicable")
    return [] if value in (*done, "not_applicable") else [Wait(name, value, owner, what)]


def _payment(state: OrderState) -> list[Wait]:
    method = state.payment_method
    if method is PaymentMethod.CARD:
        value = state.flags.get("card_authorization", "not_applicable")
        owner = "staff" if value == "failed" else "payments"
        return _flag(state, "card_authorization", ("authorized",), owner, "card authorization")
    if method is PaymentMethod.DEFERRED:
        value = state.flags.get("credit_check", "not_applicable")
        owner = "staff" if value in ("rejected", "pending") else "payments"
        return _flag(state, "credit_check", ("ok",), owner, "credit check of the deferred payment")
    if method in PREPAID:
        return _flag(state, "prepaid_payment", ("received",), "customer", "the customer's prepaid payment (payments reconciles)")
    return []


def waiting_for(state: OrderState) -> list[Wait]:
    """Everything the order's stage still needs before `progress.next_stage` moves it (empty for final stages)."""
    if state.stage in FINAL_STAGES:
        return []
    if state.stage is Stage.ON_HOLD:
        return [Wait("stage", "on_hold", "staff", "release from hold")]
    if state.mode != "auto":
        return [Wait("mode", state.mode, "staff", "staff move it by hand (manual mode) or resume auto")]
    flags = state.flags
    waits: list[Wait] = []
    match state.stage:
        case Stage.REVIEW:
            waits += _flag(state, "customer", ("normal", "confirmed"), "staff", "confirm the watch-listed customer")
            waits += _flag(state, "address", ("ok", "confirmed"), "staff", "confirm the address")
            date_owner = "shipping" if flags.get("delivery_date") == "pending" else "staff"
            waits += _flag(state, "delivery_date", ("ok", "confirmed"), date_owner, "delivery date check")
            waits += _flag(state, "points_redemption", ("reserved",), "points", "points used reserved")
            if state.blocking_tasks:
                waits.append(Wait("tasks", str(state.blocking_tasks), "staff", "close the blocking tasks"))
        case Stage.AWAITING_PAYMENT:
            waits += _payment(state)
        case Stage.AWAITING_ALLOCATION:
            waits += _flag(state, "allocation", ("full",), "shipping", "stock allocated in full")
        case Stage.READY_TO_SHIP:
            waits += _flag(state, "shipping", ("requested", "partly_shipped", "shipped"), "shipping", "shipment requested from the warehouse")
        case Stage.SHIPPING:
            waits += _flag(state, "shipping", ("shipped",), "shipping", "the warehouse ships every parcel")
        case Stage.SHIPPED:
            waits += _flag(state, "capture", ("done",), "payments", "payment captured")
            waits += _flag(state, "prepaid_payment", ("received",), "customer", "the customer's prepaid payment")
            waits += _flag(state, "cod_collection", ("collected",), "shipping", "cash collected by the carrier")
            waits += _flag(state, "points", ("confirmed", "reversed"), "points", "points confirmed")
            waits += _flag(state, "mail_shipped", tuple(MAIL_DONE), "notify", "shipped mail")
    return waits
