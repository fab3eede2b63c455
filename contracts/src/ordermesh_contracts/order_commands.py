"""Staff commands on `orders.commands.v1`; each is answered on `ops.replies.v1`."""

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from .commands import Command
from .orders import Address, ShopOrderSubmitted, Stage


class _OrderCommand(Command):
    order_id: UUID = Field(description="The order to act on; it must belong to `shop_id`.")


class HoldOrder(_OrderCommand):
    """Puts an order on hold (it keeps its stage to return to)."""

    type: Literal["HoldOrder"] = Field(default="HoldOrder", description="Contract name.")
    reason: str = Field(min_length=1, max_length=500, description="Why it is held.")


class ReleaseOrder(_OrderCommand):
    """Takes an order off hold."""

    type: Literal["ReleaseOrder"] = Field(default="ReleaseOrder", description="Contract name.")


class SetOrderStage(_OrderCommand):
    """Moves an order to a stage by hand; the order switches to manual mode."""

    type: Literal["SetOrderStage"] = Field(default="SetOrderStage", description="Contract name.")
    stage: Stage = Field(description="The stage to move to.")


class ResumeAuto(_OrderCommand):
    """Switches an order back to automatic progress."""

    type: Literal["ResumeAuto"] = Field(default="ResumeAuto", description="Contract name.")


class ConfirmAddress(_OrderCommand):
    """Staff checked the address: the address flag becomes 'confirmed' for good."""

    type: Literal["ConfirmAddress"] = Field(default="ConfirmAddress", description="Contract name.")


class ConfirmDeliveryDate(_OrderCommand):
    """Staff checked the delivery date: the delivery date flag becomes 'confirmed' for good."""

    type: Literal["ConfirmDeliveryDate"] = Field(default="ConfirmDeliveryDate", description="Contract name.")


class AddTask(_OrderCommand):
    """Adds a task for staff to the order."""

    type: Literal["AddTask"] = Field(default="AddTask", description="Contract name.")
    note: str = Field(min_length=1, max_length=500, description="What needs doing.")
    blocking: bool = Field(default=False, description="Whether the task keeps the order in review.")


class CloseTask(_OrderCommand):
    """Closes a task; closing a check task confirms the flag it is about."""

    type: Literal["CloseTask"] = Field(default="CloseTask", description="Contract name.")
    task_id: int = Field(description="The task to close.")
    note: str | None = Field(default=None, max_length=500, description="What was done.")


class AddToWatchList(Command):
    """Watch-lists a customer of the shop: their new orders stop in review with a task."""

    type: Literal["AddToWatchList"] = Field(default="AddToWatchList", description="Contract name.")
    customer_id: str = Field(min_length=1, max_length=64, description="The shop's id of the customer.")
    reason: str = Field(min_length=1, max_length=500, description="Why.")


class RemoveFromWatchList(Command):
    """Takes a customer off the shop's watch list."""

    type: Literal["RemoveFromWatchList"] = Field(default="RemoveFromWatchList", description="Contract name.")
    customer_id: str = Field(min_length=1, max_length=64, description="The shop's id of the customer.")


class OrderFilter(BaseModel):
    """Which orders of the shop a bulk command acts on (all given conditions must hold)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Stage | None = Field(default=None, description="Orders at this stage.")
    child_status: str | None = Field(default=None, description="Orders with this child status.")
    created_from: date | None = Field(default=None, description="Accepted on or after this day (UTC).")
    created_to: date | None = Field(default=None, description="Accepted on or before this day (UTC).")


class OrderChanges(BaseModel):
    """What a bulk update sets on each order; fields left out are not changed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    child_status: str | None = Field(default=None, max_length=64, description="The shop's child status to set.")
    memo: str | None = Field(default=None, max_length=2000, description="Internal memo to append.")
    add_labels: list[str] = Field(default_factory=list, description="Labels to add.")
    remove_labels: list[str] = Field(default_factory=list, description="Labels to remove.")
    carrier: str | None = Field(default=None, max_length=32, description="Carrier to use.")
    ship_date: date | None = Field(default=None, description="Planned ship date.")


class BulkUpdateOrders(Command):
    """Sets the same changes on many orders, given as ids or a filter; one result per order."""

    type: Literal["BulkUpdateOrders"] = Field(default="BulkUpdateOrders", description="Contract name.")
    order_ids: list[UUID] = Field(default_factory=list, max_length=10000, description="Orders to update.")
    filter: OrderFilter | None = Field(default=None, description="Or: the orders matching this filter.")
    changes: OrderChanges = Field(description="What to set.")


class SetRules(Command):
    """Replaces the shop's automatic processing rules (validated first; an invalid set leaves the running rules as they are)."""

    type: Literal["SetRules"] = Field(default="SetRules", description="Contract name.")
    rule_set: dict[str, Any] = Field(
        description="{groups: [{name, enabled, rules: [{name, enabled, conditions: [{field, op, value}], actions: [{type, ...}]}]}]}"
    )


class StatusGroup(BaseModel):
    """A shop's name and position for a built-in stage, with its child statuses in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Stage = Field(description="The built-in stage this group stands for.")
    name: str = Field(min_length=1, max_length=64, description="The shop's name for it.")
    children: list[str] = Field(default_factory=list, description="Child statuses, in display order.")


class ConfigureStatuses(Command):
    """Replaces the shop's two-level statuses: groups in display order, each with its child statuses."""

    type: Literal["ConfigureStatuses"] = Field(default="ConfigureStatuses", description="Contract name.")
    groups: list[StatusGroup] = Field(min_length=1, description="Status groups in display order.")


class SetChildStatus(_OrderCommand):
    """Sets a child status of the group of the order's current stage."""

    type: Literal["SetChildStatus"] = Field(default="SetChildStatus", description="Contract name.")
    status: str = Field(min_length=1, max_length=64, description="The child status.")


class EnterOrder(Command):
    """An order taken by staff (phone, fax, in person): it goes through the same intake as shop orders."""

    type: Literal["EnterOrder"] = Field(default="EnterOrder", description="Contract name.")
    order: ShopOrderSubmitted = Field(description="The order as staff keyed it in; its shop must be `shop_id`.")


class CancelOrder(_OrderCommand):
    """Cancels a whole order while nothing has shipped; each reversal is an explicit choice (seed 000)."""

    type: Literal["CancelOrder"] = Field(default="CancelOrder", description="Contract name.")
    reason: str = Field(min_length=1, max_length=500, description="Why.")
    restore_stock: bool = Field(description="Release allocated stock and cancel warehouse requests.")
    cancel_payment: bool = Field(description="Void, refund or cancel the payment request.")
    notify_customer: bool = Field(description="Send the cancellation mail.")


class LineChange(BaseModel):
    """One change to one line (a sku in a delivery group) of an order.

    A sku the group doesn't have yet is an added line and needs `name`, `unit_price` and `tax_rate_percent`.
    `quantity` sets the new quantity; 0 keeps the line on record with nothing to pay (a return). `book_cancelled`
    keeps the line as it was and books a negative line of that many units beside it (a cancelled quantity kept on
    record, seed 000). `remove` drops an unshipped line. `line_discount` sets the manual line discount (0 removes it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    delivery_index: int = Field(default=0, ge=0, description="Which delivery group of the order.")
    sku: str = Field(min_length=1, max_length=64, description="The line's sku.")
    quantity: int | None = Field(default=None, ge=0, description="New quantity; none leaves it.")
    book_cancelled: int | None = Field(default=None, ge=1, description="Units to book as cancelled on a negative line.")
    remove: bool = Field(default=False, description="Remove the (unshipped) line.")
    line_discount: int | None = Field(default=None, ge=0, description="New manual line discount in minor units.")
    name: str | None = Field(default=None, min_length=1, max_length=256, description="Product name (added lines).")
    unit_price: int | None = Field(default=None, ge=0, description="Tax-inclusive unit price (added lines).")
    tax_rate_percent: Literal[0, 8, 10] | None = Field(default=None, description="Tax rate in percent (added lines).")


class EditOrder(_OrderCommand):
    """Edits an order as one unit (Shopify's begin/commit): lines, shipping and payment fee, points used, manual line
    discounts. Shipping is not recomputed unless set here; the order-level discount can't be edited.

    Refused with every reason (and nothing changes) for a cancelled or completed order, an order whose payment is
    still pending authorization or credit check, a shipped line reduced or removed, an unknown line, an added line
    without its name, price or tax rate, or an edit that changes nothing.
    """

    type: Literal["EditOrder"] = Field(default="EditOrder", description="Contract name.")
    lines: list[LineChange] = Field(default_factory=list, max_length=500, description="The line changes.")
    shipping_fee: int | None = Field(default=None, ge=0, description="New shipping fee; none leaves it.")
    payment_fee: int | None = Field(default=None, ge=0, description="New payment fee; none leaves it.")
    points_used: int | None = Field(default=None, ge=0, description="New points used; none leaves it.")
    adjust_stock: bool = Field(description="Whether stock follows the new quantities (an explicit choice).")
    notify_customer: bool = Field(default=False, description="Mail the customer the changed order.")
    reason: str = Field(min_length=1, max_length=500, description="Why.")


class ReturnLine(BaseModel):
    """Units of one shipped line that came back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delivery_index: int = Field(default=0, ge=0, description="Which delivery group of the order.")
    sku: str = Field(min_length=1, max_length=64, description="The line's sku.")
    quantity: int = Field(ge=1, le=1_000_000, description="Units returned (at most those shipped and not returned yet).")


class ReturnItems(_OrderCommand):
    """Books goods that came back after shipping, whole or part of a line, on a shipped or completed order: the total
    goes down by what they are worth and every service follows (`OrderReturned`). Refused with every reason (nothing
    changes) for an order nothing of which has shipped, a cancelled order, or more units than shipped and not yet
    returned."""

    type: Literal["ReturnItems"] = Field(default="ReturnItems", description="Contract name.")
    lines: list[ReturnLine] = Field(min_length=1, max_length=500, description="What came back.")
    restock: bool = Field(description="Whether the units go back into stock (an explicit choice: they may be damaged).")
    notify_customer: bool = Field(default=False, description="Mail the customer the changed order.")
    reason: str = Field(min_length=1, max_length=500, description="Why they came back.")


class MovedLine(BaseModel):
    """Units of one sku moved out of a delivery group by a split."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delivery_index: int = Field(default=0, ge=0, description="The delivery group the units leave.")
    sku: str = Field(min_length=1, max_length=64, description="The line's sku.")
    quantity: int = Field(ge=1, description="Units to move (at most the unshipped units of the line).")


class SplitOrder(_OrderCommand):
    """Moves unshipped units into a new delivery group of the same order (another address or date), or into a new
    order of the same customer and payment method (seed 001). The source order is edited (one `OrderEdited`, stock
    follows); a new order goes through intake like any other and is announced with `OrderSplit`."""

    type: Literal["SplitOrder"] = Field(default="SplitOrder", description="Contract name.")
    lines: list[MovedLine] = Field(min_length=1, max_length=500, description="What moves.")
    into: Literal["delivery", "order"] = Field(description="A new delivery group of this order, or a new order.")
    address: Address | None = Field(default=None, description="Where the moved units go; none keeps the source address.")
    requested_date: date | None = Field(default=None, description="Delivery date asked for the moved units.")
    time_slot: str | None = Field(default=None, pattern=r"^\d{2}-\d{2}$", description="Time slot for the moved units.")
    shipping_fee: int = Field(default=0, ge=0, description="Shipping fee of the new order (into=order); the source keeps its own.")


class SetShippingFees(Command):
    """Sets the shop's shipping fee table, used when orders are merged (and wherever ordermesh computes a fee):
    a flat fee, overridden per prefecture, free from a merchandise total, plus a surcharge for remote islands."""

    type: Literal["SetShippingFees"] = Field(default="SetShippingFees", description="Contract name.")
    fee: int = Field(ge=0, description="Shipping fee in minor units where no prefecture fee applies.")
    by_prefecture: dict[str, int] = Field(
        default_factory=dict, description="Fee per destination prefecture (e.g. 北海道, 沖縄県), replacing `fee` there."
    )
    free_from: int | None = Field(default=None, ge=0, description="Merchandise total from which shipping is free; none: never.")
    remote_island_surcharge: int = Field(default=0, ge=0, description="Added for remote-island destinations (even when free).")


class MergeOrders(Command):
    """Merges unshipped orders of one customer, channel, payment method and destination into one new order: the
    sources are cancelled (stock released, payment reversed, no mail) and the merged order goes through intake with
    one shipping fee — from the shop's fee table (`SetShippingFees`) for the merged order, else the highest of the
    sources, unless given — and is announced with `OrdersMerged`."""

    type: Literal["MergeOrders"] = Field(default="MergeOrders", description="Contract name.")
    order_ids: list[UUID] = Field(min_length=2, max_length=20, description="The orders to merge, the first one leading.")
    shipping_fee: int | None = Field(
        default=None, ge=0, description="Shipping fee of the merged order; none computes it from the shop's fee table."
    )


OrdersCommand = Annotated[
    HoldOrder
    | ReleaseOrder
    | SetOrderStage
    | ResumeAuto
    | ConfirmAddress
    | ConfirmDeliveryDate
    | AddTask
    | CloseTask
    | AddToWatchList
    | RemoveFromWatchList
    | BulkUpdateOrders
    | SetRules
    | ConfigureStatuses
    | SetChildStatus
    | EnterOrder
    | CancelOrder
    | EditOrder
    | ReturnItems
    | SplitOrder
    | MergeOrders
    | SetShippingFees,
    Field(discriminator="type"),
]
"""Everything on `orders.commands.v1`."""
