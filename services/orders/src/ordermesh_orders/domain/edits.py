"""Order edits (seeds 000 and 003, Shopify's begin/commit): a pure plan of the edited order, or every reason it is
refused. Nothing is half-applied: the plan is the whole edit or nothing."""

from dataclasses import dataclass

from ordermesh_contracts import (
    Charges,
    DeliveryGroup,
    EditOrder,
    LineChange,
    LineDiff,
    OrderLine,
    PaymentMethod,
    Stage,
)

from .staff import Refusal

NOT_EDITABLE_STAGES = (Stage.CANCELLED, Stage.COMPLETED)
AUTHORIZATION_PENDING = {
    "card_authorization": ("none", "in_progress"),
    "credit_check": ("not_yet", "pending"),
}

HAND_REFUNDED = (
    PaymentMethod.BANK_TRANSFER, PaymentMethod.CONVENIENCE_STORE, PaymentMethod.CASH_ON_DELIVERY, PaymentMethod.PLATFORM,
)
"""Methods whose money is paid back by staff (or on the platform), not by a gateway refund here."""

Shipped = dict[tuple[int, str], int]
"""Units shipped so far per (delivery index, sku)."""


@dataclass(frozen=True)
class EditPlan:
    """The order as the edit leaves it, and what changed."""

    deliveries: list[DeliveryGroup]
    charges: Charges
    merchandise_total: int
    changes: list[LineDiff]


def net_quantity(lines: list[OrderLine], sku: str) -> int:
    """Units of a sku in a delivery group: its line less any negative line booked beside it."""
    return sum(line.quantity for line in lines if line.sku == sku)


def merchandise_total_of(deliveries: list[DeliveryGroup]) -> int:
    """Sum of all lines after their discounts (a negative line lowers it)."""
    return sum(line.unit_price * line.quantity - line.line_discount for group in deliveries for line in group.lines)


def edit_refusals(stage: Stage, payment_method: PaymentMethod, flags: dict[str, str]) -> list[str]:
    """Why the order can't be edited at all in its present state (empty when it can)."""
    if stage in NOT_EDITABLE_STAGES:
        return [f"a {stage.value} order can't be edited"]
    for flag, pending in AUTHORIZATION_PENDING.items():
        if flags.get(flag) in pending:
            what = "card authorization" if flag == "card_authorization" else "credit check"
            return [f"the {what} is still pending: edit once the payment is authorized"]
    if payment_method is PaymentMethod.CARD and flags.get("capture") == "in_progress":
        return ["a capture is in progress"]
    return []


def plan_edit(
    deliveries: list[DeliveryGroup],
    charges: Charges,
    command: EditOrder,
    shipped: Shipped,
    shipped_deliveries: set[int],
) -> EditPlan:
    """Applies the edit to the order's lines and charges; raises `Refusal` with every reason if any part is not allowed.

    Only the fields the edit sets change: shipping is not recomputed, the order-level discount is not editable.
    """
    reasons: list[str] = []
    groups = [list(group.lines) for group in deliveries]
    changes: list[LineDiff] = []
    touched: set[tuple[int, str]] = set()
    for change in command.lines:
        where = f"delivery {change.delivery_index} sku {change.sku}"
        if change.delivery_index >= len(groups):
            reasons.append(f"{where}: the order has no delivery {change.delivery_index}")
            continue
        if (change.delivery_index, change.sku) in touched:
            reasons.append(f"{where}: changed twice in one edit")
            continue
        touched.add((change.delivery_index, change.sku))
        if change.delivery_index in shipped_deliveries:
            reasons.append(f"{where}: delivery {change.delivery_index} already shipped")
            continue
        lines = groups[change.delivery_index]
        done = shipped.get((change.delivery_index, change.sku), 0)
        result = _apply_line_change(lines, change, done)
        if isinstance(result, str):
            reasons.append(f"{where}: {result}")
            continue
        groups[change.delivery_index], diff = result
        changes.append(diff)
    for index, lines in enumerate(groups):
        if not lines:
            reasons.append(f"delivery {index} would have no lines left (set them to 0 to keep the record, or cancel)")
    new_deliveries = [group.model_copy(update={"lines": lines}) for group, lines in zip(deliveries, groups)]
    merchandise = merchandise_total_of(new_deliveries)
    new_charges = _recharged(charges, command, merchandise)
    if new_charges.total < 0:
        reasons.append(f"the new total would be negative ({new_charges.total}): lower the points used")
    if not reasons and not changes and new_charges == charges:
        reasons.append("the edit changes nothing")
    if reasons:
        raise Refusal(*reasons)
    return EditPlan(new_deliveries, new_charges, merchandise, changes)


def balance_of(total: int, paid: int) -> int:
    """What is still due (> 0) or owed back (< 0) once money was collected; 0 while nothing was collected yet."""
    return total - paid if paid > 0 else 0


def _recharged(charges: Charges, command: EditOrder, merchandise: int) -> Charges:
    shipping_fee = charges.shipping_fee if command.shipping_fee is None else command.shipping_fee
    payment_fee = charges.payment_fee if command.payment_fee is None else command.payment_fee
    points_used = charges.points_used if command.points_used is None else command.points_used
    total = merchandise + shipping_fee + payment_fee - charges.order_discount - points_used
    return charges.model_copy(
        update={"shipping_fee": shipping_fee, "payment_fee": payment_fee, "points_used": points_used, "total": total}
    )


def _apply_line_change(
    lines: list[OrderLine], change: LineChange, shipped: int
) -> tuple[list[OrderLine], LineDiff] | str:
    """The group's lines after one change and its diff, or why the change is not allowed."""
    primary = next((line for line in lines if line.sku == change.sku and line.quantity >= 0), None)
    if primary is None:
        return _added_line(lines, change)
    before = net_quantity(lines, change.sku)
    actions = sum([change.quantity is not None, change.book_cancelled is not None, change.remove])
    if actions > 1:
        return "give one of quantity, book_cancelled or remove"
    if change.name is not None or change.unit_price is not None or change.tax_rate_percent is not None:
        return "name, price and tax rate can only be given for an added line"
    others = [line for line in lines if line.sku != change.sku]
    record = [line for line in lines if line.sku == change.sku and line.quantity < 0]
    discount = primary.line_discount if change.line_discount is None else change.line_discount
    if change.remove:
        if shipped:
            return f"{shipped} shipped: a shipped line can't be removed"
        return others, _diff(change, "removed", before, 0, primary, 0)
    if change.book_cancelled is not None:
        after = before - change.book_cancelled
        if after < shipped:
            return f"only {before - shipped} unshipped units can be booked as cancelled"
        booked = -change.book_cancelled + sum(line.quantity for line in record)
        record_line = primary.model_copy(update={"quantity": booked, "line_discount": 0})
        updated = primary.model_copy(update={"line_discount": discount})
        return _refusal_if_over_discount(updated, after) or (
            [*others, updated, record_line],
            _diff(change, "cancelled_booked", before, after, primary, discount),
        )
    if change.quantity is not None:
        after = change.quantity
        if after < shipped:
            return f"{shipped} shipped: a shipped quantity can't be reduced (asked for {after})"
        # the negative record lines stay as booked; the primary line carries the rest of the new net quantity
        primary_quantity = after - sum(line.quantity for line in record)
        updated = primary.model_copy(update={"quantity": primary_quantity, "line_discount": 0 if after == 0 else discount})
        kind = "returned" if after == 0 else "changed"
        return _refusal_if_over_discount(updated, after) or (
            [*others, updated, *record],
            _diff(change, kind, before, after, primary, updated.line_discount),
        )
    if change.line_discount is not None:
        if change.line_discount == primary.line_discount:
            return "the discount is already that"
        updated = primary.model_copy(update={"line_discount": discount})
        return _refusal_if_over_discount(updated, before) or (
            [*others, updated, *record],
            _diff(change, "discount_changed", before, before, primary, discount),
        )
    return "nothing to change on this line"


def _added_line(lines: list[OrderLine], change: LineChange) -> tuple[list[OrderLine], LineDiff] | str:
    if change.remove or change.book_cancelled is not None:
        return "the delivery has no such line"
    missing = [
        field for field in ("name", "unit_price", "tax_rate_percent", "quantity") if getattr(change, field) is None
    ]
    if missing:
        return f"an added line needs {', '.join(missing)}"
    if change.quantity == 0:
        return "an added line needs a positive quantity"
    line = OrderLine(
        sku=change.sku,
        name=change.name,
        unit_price=change.unit_price,
        quantity=change.quantity,
        tax_rate_percent=change.tax_rate_percent,
        line_discount=change.line_discount or 0,
    )
    refusal = _refusal_if_over_discount(line, change.quantity)
    if refusal:
        return refusal
    return [*lines, line], _diff(change, "added", 0, change.quantity, line, line.line_discount, previous_discount=0)


def _refusal_if_over_discount(line: OrderLine, net: int) -> str | None:
    if line.line_discount > line.unit_price * max(net, 0):
        return f"discount {line.line_discount} exceeds the line amount {line.unit_price * max(net, 0)}"
    return None


def _diff(
    change: LineChange,
    kind: str,
    before: int,
    after: int,
    line: OrderLine,
    discount: int,
    *,
    previous_discount: int | None = None,
) -> LineDiff:
    return LineDiff(
        delivery_index=change.delivery_index,
        sku=change.sku,
        change=kind,
        previous_quantity=before,
        quantity=after,
        unit_price=line.unit_price,
        previous_line_discount=line.line_discount if previous_discount is None else previous_discount,
        line_discount=discount,
    )



def fully_shipped_deliveries(deliveries: list[DeliveryGroup], shipped: Shipped) -> set[int]:
    """Delivery groups whose every unit has shipped: they can't be edited any more."""
    done = set()
    for index, group in enumerate(deliveries):
        skus = {line.sku for line in group.lines}
        due = {sku: net_quantity(group.lines, sku) for sku in skus}
        if any(shipped.get((index, sku), 0) for sku in skus) and all(
            shipped.get((index, sku), 0) >= quantity for sku, quantity in due.items()
        ):
            done.add(index)
    return done


def flags_after_edit(
    previous: Charges, charges: Charges, payment_method: PaymentMethod, notify_customer: bool, *, balance: int = 0
) -> dict[str, str]:
    """Flags an edit sets until the services answer: the payment's amount change and the points used are pending.
    Money collected outside a gateway (prepaid, cash on delivery) that now exceeds the total is a refund staff owe."""
    flags: dict[str, str] = {}
    if balance < 0 and payment_method in HAND_REFUNDED:
        flags["refund"] = "owed"
    if charges.total != previous.total and payment_method is not PaymentMethod.POINTS_ONLY:
        flags["amount_change"] = "pending"
    if charges.points_used != previous.points_used:
        flags["points_redemption"] = "pending" if charges.points_used > 0 else "not_applicable"
    if notify_customer:
        flags["mail_order_changed"] = "unsent"
    return flags


def reversal_of(
    now: list[DeliveryGroup], before: list[DeliveryGroup], delivery_index: int, charges: Charges
) -> EditPlan | None:
    """The edit that puts one delivery group's lines back as they were before an edit the warehouse could not
    follow (it had already picked or shipped them); None when there is nothing to put back or it can't be."""
    if delivery_index >= len(before) or delivery_index >= len(now):
        return None
    current, restored = now[delivery_index].lines, before[delivery_index].lines
    if current == restored:
        return None
    deliveries = [*now[:delivery_index], now[delivery_index].model_copy(update={"lines": restored}), *now[delivery_index + 1:]]
    merchandise = merchandise_total_of(deliveries)
    total = merchandise + charges.shipping_fee + charges.payment_fee - charges.order_discount - charges.points_used
    if total < 0:
        return None
    changes = []
    for sku in dict.fromkeys(line.sku for line in [*current, *restored]):
        was, back = _primary_of(current, sku), _primary_of(restored, sku)
        previous, quantity = net_quantity(current, sku), net_quantity(restored, sku)
        kind = "added" if was is None else "removed" if back is None else None
        if kind is None and previous != quantity:
            kind = "returned" if quantity == 0 else "changed"
        if kind is None and was.line_discount != back.line_discount:
            kind = "discount_changed"
        if kind is None:
            continue
        changes.append(LineDiff(
            delivery_index=delivery_index, sku=sku, change=kind, previous_quantity=max(previous, 0), quantity=max(quantity, 0),
            unit_price=(back or was).unit_price, previous_line_discount=was.line_discount if was else 0,
            line_discount=back.line_discount if back else 0,
        ))
    return EditPlan(deliveries, charges.model_copy(update={"total": total}), merchandise, changes)


def _primary_of(lines: list[OrderLine], sku: str) -> OrderLine | None:
    return next((line for line in lines if line.sku == sku and line.quantity >= 0), None)
