"""Returns after shipping (seed 000): units that came back are booked as a negative line beside their line, the
line's discount shrinks by their share, and the order's total goes down by what they are worth."""

from dataclasses import dataclass

from ordermesh_contracts import Charges, DeliveryGroup, LineDiff, ReturnedLine, ReturnItems, Stage

from .edits import Shipped, merchandise_total_of, net_quantity
from .staff import Refusal

Returned = dict[tuple[int, str], int]
"""Units returned so far per (delivery index, sku)."""


@dataclass(frozen=True)
class ReturnPlan:
    """The order as the return leaves it, what came back and what it is worth."""

    deliveries: list[DeliveryGroup]
    charges: Charges
    merchandise_total: int
    lines: list[ReturnedLine]
    amount: int
    changes: list[LineDiff]


def return_refusals(stage: Stage, shipped: Shipped) -> list[str]:
    """Why the order takes no return at all now (empty when it does)."""
    if stage is Stage.CANCELLED:
        return ["a cancelled order takes no returns"]
    if not any(units > 0 for units in shipped.values()):
        return ["nothing of the order has shipped yet: edit or cancel it instead"]
    return []


def plan_return(
    deliveries: list[DeliveryGroup], charges: Charges, command: ReturnItems, shipped: Shipped, returned: Returned
) -> ReturnPlan:
    """Books each returned quantity; raises `Refusal` with every reason if any part is not allowed (more than shipped
    and not yet returned, an unknown line, a line twice, or a return worth more than the order's total)."""
    reasons: list[str] = []
    groups = [list(group.lines) for group in deliveries]
    lines: list[ReturnedLine] = []
    changes: list[LineDiff] = []
    seen: set[tuple[int, str]] = set()
    for item in command.lines:
        key, where = (item.delivery_index, item.sku), f"delivery {item.delivery_index} sku {item.sku}"
        if item.delivery_index >= len(groups):
            reasons.append(f"{where}: the order has no delivery {item.delivery_index}")
            continue
        if key in seen:
            reasons.append(f"{where}: returned twice in one command")
            continue
        seen.add(key)
        group = groups[item.delivery_index]
        primary = next((line for line in group if line.sku == item.sku and line.quantity > 0), None)
        if primary is None:
            reasons.append(f"{where}: the delivery has no such line")
            continue
        returnable = shipped.get(key, 0) - returned.get(key, 0)
        if item.quantity > returnable:
            reasons.append(f"{where}: {returnable} shipped and not yet returned, can't return {item.quantity}")
            continue
        before = net_quantity(group, item.sku)
        share = primary.line_discount * item.quantity // before if before > 0 else 0
        amount = primary.unit_price * item.quantity - share
        kept = primary.model_copy(update={"line_discount": primary.line_discount - share})
        record = primary.model_copy(update={"quantity": -item.quantity, "line_discount": 0})
        groups[item.delivery_index] = [kept if line is primary else line for line in group] + [record]
        lines.append(ReturnedLine(
            delivery_index=item.delivery_index, sku=item.sku, name=primary.name, quantity=item.quantity,
            unit_price=primary.unit_price, tax_rate_percent=primary.tax_rate_percent, amount=amount,
        ))
        changes.append(LineDiff(
            delivery_index=item.delivery_index, sku=item.sku, change="returned", previous_quantity=max(before, 0),
            quantity=max(before - item.quantity, 0), unit_price=primary.unit_price,
            previous_line_discount=primary.line_discount, line_discount=kept.line_discount,
        ))
    amount = sum(line.amount for line in lines)
    if not reasons and amount > charges.total:
        reasons.append(
            f"the return is worth {amount}, more than the order's total {charges.total} (points paid part of it): "
            "give the points back by hand and return less"
        )
    if reasons:
        raise Refusal(*reasons)
    new_deliveries = [group.model_copy(update={"lines": group_lines}) for group, group_lines in zip(deliveries, groups)]
    return ReturnPlan(
        deliveries=new_deliveries,
        charges=charges.model_copy(update={"total": charges.total - amount}),
        merchandise_total=merchandise_total_of(new_deliveries),
        lines=lines,
        amount=amount,
        changes=changes,
    )
