"""Split and merge (seed 001), as pure plans: a split is an edit of the source plus a new delivery group or a new
order; a merge is one new order made of the sources' lines, after which the sources are cancelled."""

from datetime import datetime

from ordermesh_contracts import (
    Charges,
    DeliveryGroup,
    EditOrder,
    LineChange,
    LineDiff,
    MovedLine,
    OrderAccepted,
    OrderLine,
    ShopOrderSubmitted,
    SplitOrder,
)

from .edits import EditPlan, Shipped, merchandise_total_of, net_quantity, plan_edit
from .fees import FeeTable, shipping_fee
from .staff import Refusal

MAX_ORDER_NO = 64


def _primary(group: DeliveryGroup, sku: str) -> OrderLine | None:
    return next((line for line in group.lines if line.sku == sku and line.quantity >= 0), None)


def moved_lines(deliveries: list[DeliveryGroup], moves: list[MovedLine]) -> tuple[list[LineChange], list[OrderLine]]:
    """The source's line changes and the lines that leave it. Units move without their line discount unless the
    whole line moves (then the discount goes with it); the source is checked by the edit rules (shipped units stay)."""
    changes, lines = [], []
    for move in moves:
        group = deliveries[move.delivery_index] if move.delivery_index < len(deliveries) else None
        primary = _primary(group, move.sku) if group else None
        if primary is None:
            # let the edit rules name the problem (no such delivery or line)
            changes.append(LineChange(delivery_index=move.delivery_index, sku=move.sku, remove=True))
            continue
        net = net_quantity(group.lines, move.sku)
        whole = move.quantity >= net
        if whole:
            changes.append(LineChange(delivery_index=move.delivery_index, sku=move.sku, remove=True))
        else:
            changes.append(LineChange(delivery_index=move.delivery_index, sku=move.sku, quantity=net - move.quantity))
        lines.append(primary.model_copy(update={"quantity": move.quantity, "line_discount": primary.line_discount if whole else 0}))
    return changes, lines


def plan_split(
    deliveries: list[DeliveryGroup], charges: Charges, command: SplitOrder, shipped: Shipped, shipped_deliveries: set[int]
) -> tuple[EditPlan, list[OrderLine]]:
    """The source order's edit and the moved lines; a split into a delivery group keeps the order's totals and adds
    the group to the plan. Raises `Refusal` with every reason."""
    reasons = [
        f"delivery {move.delivery_index} sku {move.sku}: moves more than the {net} units it has"
        for move in command.lines
        if move.delivery_index < len(deliveries)
        and (net := net_quantity(deliveries[move.delivery_index].lines, move.sku)) < move.quantity
        and _primary(deliveries[move.delivery_index], move.sku) is not None
    ]
    if reasons:
        raise Refusal(*reasons)
    changes, lines = moved_lines(deliveries, command.lines)
    edit = EditOrder(
        shop_id=command.shop_id, issued_by=command.issued_by, order_id=command.order_id, lines=changes,
        adjust_stock=True, reason=f"split into a new {command.into}",
    )
    source = plan_edit(deliveries, charges, edit, shipped, shipped_deliveries)
    if command.into == "order":
        return source, lines
    origin = deliveries[command.lines[0].delivery_index]
    group = origin.model_copy(update={
        "address": command.address or origin.address,
        "requested_date": command.requested_date,
        "time_slot": command.time_slot,
        "lines": lines,
    })
    new_index = len(deliveries)
    added = [
        LineDiff(delivery_index=new_index, sku=line.sku, change="added", previous_quantity=0, quantity=line.quantity,
                 unit_price=line.unit_price, previous_line_discount=0, line_discount=line.line_discount)
        for line in lines
    ]
    deliveries_after = [*source.deliveries, group]
    merchandise = merchandise_total_of(deliveries_after)
    return EditPlan(deliveries_after, charges, merchandise, [*source.changes, *added]), lines


def split_off_order(
    current: OrderAccepted, command: SplitOrder, lines: list[OrderLine], edit_no: int, now: datetime
) -> ShopOrderSubmitted:
    """The new order a split into an order creates: the moved lines, the given shipping fee, the same customer and
    payment. The billing address is the delivery address (the accepted order keeps no billing address)."""
    origin = current.deliveries[command.lines[0].delivery_index]
    address = command.address or origin.address
    merchandise = sum(line.unit_price * line.quantity - line.line_discount for line in lines)
    suffix = f"-S{edit_no}"
    return ShopOrderSubmitted(
        shop_id=current.shop_id,
        channel=current.channel,
        external_order_no=current.external_order_no[: MAX_ORDER_NO - len(suffix)] + suffix,
        ordered_at=now,
        currency=current.currency,
        customer=current.customer,
        billing_address=address,
        deliveries=[origin.model_copy(update={
            "address": address, "requested_date": command.requested_date, "time_slot": command.time_slot, "lines": lines,
        })],
        charges=Charges(shipping_fee=command.shipping_fee, total=merchandise + command.shipping_fee),
        payment=current.payment,
        remarks=current.remarks,
    )


def merge_refusals(sources: list[OrderAccepted]) -> list[str]:
    """Why these orders can't be merged into one (empty when they can): they must share customer, channel,
    currency, payment method and destination."""
    first = sources[0]
    reasons = []
    for label, key in (
        ("customer", lambda o: o.customer.customer_id),
        ("channel", lambda o: o.channel),
        ("currency", lambda o: o.currency),
        ("payment method", lambda o: o.payment.method),
        ("destination", lambda o: {d.address for d in o.deliveries}),
    ):
        if any(key(order) != key(first) for order in sources[1:]):
            reasons.append(f"the orders differ in {label}")
    if len({d.address for o in sources for d in o.deliveries}) > 1:
        reasons.append("every delivery must go to one address")
    return list(dict.fromkeys(reasons))


def merged_order(
    sources: list[OrderAccepted], given_fee: int | None, suffix: str, now: datetime, fee_table: FeeTable | None = None
) -> ShopOrderSubmitted:
    """One order of every source's lines (same sku and price combined, lines with nothing left dropped), one shipping
    fee (the given one, else the shop's fee table's for the merged lines and destination, else the sources' highest),
    the highest payment fee, the order discounts and points used added up. Raises `Refusal` for a sku sold at
    different prices."""
    first = sources[0]
    combined: dict[str, OrderLine] = {}
    reasons = []
    for line in (line for order in sources for group in order.deliveries for line in group.lines):
        known = combined.get(line.sku)
        if known is None:
            combined[line.sku] = line
        elif (known.unit_price, known.tax_rate_percent) != (line.unit_price, line.tax_rate_percent):
            reasons.append(f"sku {line.sku} has different prices in the orders")
        else:
            # a negative line booked to keep a cancelled quantity on record nets against its sku here
            combined[line.sku] = known.model_copy(update={
                "quantity": known.quantity + line.quantity, "line_discount": known.line_discount + line.line_discount,
            })
    if reasons:
        raise Refusal(*dict.fromkeys(reasons))
    lines = [line for line in combined.values() if line.quantity > 0]
    charges = [order.charges for order in sources]
    merchandise = sum(line.unit_price * line.quantity - line.line_discount for line in lines)
    if given_fee is not None:
        fee = given_fee
    elif fee_table is not None:
        fee = shipping_fee(fee_table, first.deliveries[0].address, merchandise)
    else:
        fee = max(c.shipping_fee for c in charges)
    payment_fee = max(c.payment_fee for c in charges)
    discount = sum(c.order_discount for c in charges)
    points = sum(c.points_used for c in charges)
    remarks = "\n".join(order.remarks for order in sources if order.remarks) or None
    return ShopOrderSubmitted(
        shop_id=first.shop_id,
        channel=first.channel,
        external_order_no=first.external_order_no[: MAX_ORDER_NO - len(suffix)] + suffix,
        ordered_at=now,
        currency=first.currency,
        customer=first.customer,
        billing_address=first.deliveries[0].address,
        deliveries=[first.deliveries[0].model_copy(update={"lines": lines})],
        charges=Charges(
            shipping_fee=fee, payment_fee=payment_fee, order_discount=discount, points_used=points,
            total=merchandise + fee + payment_fee - discount - points,
        ),
        payment=first.payment,
        remarks=remarks[:2000] if remarks else None,
    )
