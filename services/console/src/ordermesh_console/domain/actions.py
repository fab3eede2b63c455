"""What a form on an order's page asks for, as the staff command that does it: the command, its topic and the
permission it needs. Bad input is refused with every reason before anything is sent."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ordermesh_contracts import (
    AddTask,
    CancelOrder,
    CloseTask,
    Command,
    ConfirmAddress,
    ConfirmDeliveryDate,
    EditOrder,
    HoldOrder,
    LineChange,
    MergeOrders,
    MovedLine,
    ReleaseOrder,
    ResendMail,
    ResumeAuto,
    SetChildStatus,
    SetOrderStage,
    SplitOrder,
    topics,
)
from pydantic import ValidationError

from .roles import Permission


class FormError(ValueError):
    """The form can't become a command; `reasons` says every reason."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass(frozen=True)
class Target:
    """The order an action is about, and who acts."""

    order_id: UUID
    shop_id: str
    actor: str


Form = Mapping[str, Any]
Builder = Callable[[Form, Target], Command]


@dataclass(frozen=True)
class Action:
    """One thing staff can do on an order's page."""

    permission: Permission
    topic: str
    build: Builder


def _common(target: Target) -> dict[str, Any]:
    return {"shop_id": target.shop_id, "issued_by": target.actor, "order_id": target.order_id}


def _text(form: Form, name: str) -> str:
    return str(form.get(name) or "").strip()


def _choice(form: Form, name: str, reasons: list[str]) -> bool:
    """A yes/no that must be chosen explicitly (no default), as seed 000 asks for cancellations and stock."""
    value = _text(form, name)
    if value not in ("yes", "no"):
        reasons.append(f"{name}: choose yes or no")
        return False
    return value == "yes"


def _int(form: Form, name: str, reasons: list[str], *, minimum: int = 0) -> int | None:
    value = _text(form, name)
    if value == "":
        return None
    try:
        number = int(value.replace(",", ""))
    except ValueError:
        reasons.append(f"{name}: {value!r} is not a whole number")
        return None
    if number < minimum or number > 10**12:
        reasons.append(f"{name}: must be between {minimum} and {10**12}")
        return None
    return number


def _line_key(key: str, reasons: list[str]) -> tuple[int, str] | None:
    """`<prefix>:<delivery index>:<sku>` as (index, sku); None with a reason when it is not one."""
    _, index, sku = (key.split(":", 2) + ["", ""])[:3]
    if not (index.isascii() and index.isdigit() and len(index) <= 3) or not sku:
        reasons.append(f"{key[:60]!r}: not <delivery index>:<sku>")
        return None
    return int(index), sku


def _cancel(form: Form, target: Target) -> Command:
    reasons: list[str] = []
    restore_stock = _choice(form, "restore_stock", reasons)
    cancel_payment = _choice(form, "cancel_payment", reasons)
    notify_customer = _choice(form, "notify_customer", reasons)
    _raise(reasons)
    return CancelOrder(
        **_common(target), reason=_text(form, "reason"), restore_stock=restore_stock,
        cancel_payment=cancel_payment, notify_customer=notify_customer,
    )


def _edit(form: Form, target: Target) -> Command:
    """Quantities come as `qty:<delivery index>:<sku>`, line discounts as `disc:<…>` (only changed ones count:
    `was:<…>` and `was_disc:<…>` hold the old values)."""
    reasons: list[str] = []
    lines = []
    for key in form:
        if not key.startswith("qty:") or (line := _line_key(key, reasons)) is None:
            continue
        index, sku = line
        quantity = _int(form, key, reasons)
        previous = _int(form, f"was:{index}:{sku}", reasons)
        discount = _int(form, f"disc:{index}:{sku}", reasons)
        previous_discount = _int(form, f"was_disc:{index}:{sku}", reasons)
        change = {
            "quantity": quantity if quantity is not None and quantity != previous else None,
            "line_discount": discount if discount is not None and discount != previous_discount else None,
        }
        if any(v is not None for v in change.values()):
            lines.append(LineChange(delivery_index=index, sku=sku, **change))
    if _text(form, "add_sku"):
        lines.append(_added_line(form, reasons))
    fees = {name: _int(form, name, reasons) for name in ("shipping_fee", "payment_fee", "points_used")}
    previous = {name: _int(form, f"was:{name}", reasons) for name in fees}
    changed = {name: value for name, value in fees.items() if value is not None and value != previous[name]}
    adjust_stock = _choice(form, "adjust_stock", reasons)
    _raise(reasons)
    return EditOrder(
        **_common(target), lines=lines, adjust_stock=adjust_stock, reason=_text(form, "reason"),
        notify_customer=_text(form, "notify_customer") == "yes", **changed,
    )


def _added_line(form: Form, reasons: list[str]) -> LineChange:
    try:
        return LineChange(
            delivery_index=_int(form, "add_delivery", reasons) or 0, sku=_text(form, "add_sku"),
            quantity=_int(form, "add_quantity", reasons, minimum=1), name=_text(form, "add_name") or None,
            unit_price=_int(form, "add_unit_price", reasons), tax_rate_percent=_int(form, "add_tax_rate", reasons),
        )
    except ValidationError as error:
        reasons.extend(_reasons(error))
        return LineChange(sku="?")


def _split(form: Form, target: Target) -> Command:
    """Units to move come as `move:<delivery index>:<sku>`."""
    reasons: list[str] = []
    moved = []
    for key in form:
        if key.startswith("move:") and (line := _line_key(key, reasons)) is not None:
            units = _int(form, key, reasons)
            if units:
                moved.append(MovedLine(delivery_index=line[0], sku=line[1], quantity=units))
    if not moved:
        reasons.append("choose at least one unit to move")
    _raise(reasons)
    return SplitOrder(**_common(target), lines=moved, into=_text(form, "into") or "delivery")


def _merge(form: Form, target: Target) -> Command:
    reasons: list[str] = []
    others = []
    for part in _text(form, "other_order_ids").replace(",", " ").split():
        try:
            others.append(UUID(part))
        except ValueError:
            reasons.append(f"{part[:64]!r}: no such order of this shop (give shop order numbers or order ids)")
    shipping_fee = _int(form, "shipping_fee", reasons)
    _raise(reasons)
    return MergeOrders(
        shop_id=target.shop_id, issued_by=target.actor, order_ids=[target.order_id, *others], shipping_fee=shipping_fee
    )


def _raise(reasons: list[str]) -> None:
    if reasons:
        raise FormError(reasons)


def _reasons(error: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in error.errors()]


ORDER_ACTIONS: dict[str, Action] = {
    "hold": Action(Permission.OPERATE, topics.ORDERS_COMMANDS, lambda f, t: HoldOrder(**_common(t), reason=_text(f, "reason"))),
    "release": Action(Permission.OPERATE, topics.ORDERS_COMMANDS, lambda f, t: ReleaseOrder(**_common(t))),
    "child_status": Action(
        Permission.OPERATE, topics.ORDERS_COMMANDS, lambda f, t: SetChildStatus(**_common(t), status=_text(f, "status"))
    ),
    "stage": Action(Permission.OPERATE, topics.ORDERS_COMMANDS, lambda f, t: SetOrderStage(**_common(t), stage=_text(f, "stage"))),
    "resume_auto": Action(Permission.OPERATE, topics.ORDERS_COMMANDS, lambda f, t: ResumeAuto(**_common(t))),
    "confirm_address": Action(Permission.OPERATE, topics.ORDERS_COMMANDS, lambda f, t: ConfirmAddress(**_common(t))),
    "confirm_date": Action(Permission.OPERATE, topics.ORDERS_COMMANDS, lambda f, t: ConfirmDeliveryDate(**_common(t))),
    "add_task": Action(
        Permission.OPERATE, topics.ORDERS_COMMANDS,
        lambda f, t: AddTask(**_common(t), note=_text(f, "note"), blocking=_text(f, "blocking") == "yes"),
    ),
    "close_task": Action(
        Permission.OPERATE, topics.ORDERS_COMMANDS,
        lambda f, t: CloseTask(**_common(t), task_id=_text(f, "task_id"), note=_text(f, "note") or None),
    ),
    "resend_mail": Action(
        Permission.OPERATE, topics.NOTIFY_COMMANDS,
        lambda f, t: ResendMail(**_common(t), mail_id=_text(f, "mail_id")),
    ),
    "cancel": Action(Permission.EDIT, topics.ORDERS_COMMANDS, _cancel),
    "edit": Action(Permission.EDIT, topics.ORDERS_COMMANDS, _edit),
    "split": Action(Permission.EDIT, topics.ORDERS_COMMANDS, _split),
    "merge": Action(Permission.EDIT, topics.ORDERS_COMMANDS, _merge),
}


def build_command(action: Action, form: Form, target: Target) -> Command:
    """The command a form asks for; FormError with every reason when the form can't be one."""
    try:
        return action.build(form, target)
    except ValidationError as error:
        raise FormError(_reasons(error)) from error
