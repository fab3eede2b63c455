"""Contracts of the shipping service: events on `shipping.events.v1` and warehouse reports on its callback topic."""

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .commands import Command
from .envelope import Message, OrderMessage
from .money import MinorUnits

MAX_UNITS = 10**9
"""The most units of one sku a shipment, allocation or stock level can hold; more is refused as a typo or an attack."""


class ShippedLine(BaseModel):
    """A quantity of one sku."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(description="Stock-keeping unit.")
    quantity: int = Field(ge=0, le=MAX_UNITS, description="Units.")


class StockAllocated(OrderMessage):
    """Stock was set aside for the order: fully, partly or not at all."""

    type: Literal["StockAllocated"] = Field(default="StockAllocated", description="Contract name.")
    allocation: Literal["full", "partial", "none"] = Field(description="How much of the order is covered.")
    lines: list[ShippedLine] = Field(description="Allocated quantity per sku.")


class ShipmentRequested(OrderMessage):
    """A shipment of one delivery group was requested from the warehouse."""

    type: Literal["ShipmentRequested"] = Field(default="ShipmentRequested", description="Contract name.")
    shipment_id: UUID = Field(description="ordermesh's id of the shipment.")
    delivery_index: int = Field(ge=0, description="Which delivery group of the order ships.")
    warehouse_request_id: str = Field(description="The warehouse's id of the request.")


class ShipmentShipped(OrderMessage):
    """The warehouse handed a parcel of a shipment to the carrier: `lines` are what this parcel carries (a delivery
    group may leave in several parcels, each with its own tracking number and event)."""

    type: Literal["ShipmentShipped"] = Field(default="ShipmentShipped", description="Contract name.")
    shipment_id: UUID = Field(description="ordermesh's id of the shipment.")
    delivery_index: int = Field(ge=0, description="Which delivery group shipped.")
    carrier: str = Field(description="Carrier that has the parcel.")
    tracking_number: str = Field(description="The carrier's tracking number.")
    shipped_at: AwareDatetime = Field(description="When it left the warehouse.")
    lines: list[ShippedLine] = Field(description="What shipped.")
    all_shipped: bool = Field(description="Whether every delivery group of the order has now shipped.")


class DeliveryDateCheck(BaseModel):
    """The delivery-date check of one delivery group."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delivery_index: int = Field(ge=0, description="Which delivery group of the order.")
    requested_date: date | None = Field(description="The date the customer asked for, if any.")
    earliest_delivery_date: date = Field(description="The earliest date this group can be delivered.")
    ok: bool = Field(description="Whether the requested date (if any) can be met.")


class DeliveryDateChecked(OrderMessage):
    """Shipping checked whether the order's requested delivery dates can be met (published for every accepted order).

    `result` is error when any delivery group asked for a date earlier than it can arrive; an order
    without a requested date is always ok.
    """

    type: Literal["DeliveryDateChecked"] = Field(default="DeliveryDateChecked", description="Contract name.")
    result: Literal["ok", "error"] = Field(description="ok, or error when a requested date can't be met.")
    earliest_ship_date: date = Field(description="First working day the order can leave (calendar and cutoff).")
    earliest_delivery_date: date = Field(description="Earliest date every delivery group can be delivered.")
    reasons: list[str] = Field(default_factory=list, description="Why the result is error; empty when ok.")
    deliveries: list[DeliveryDateCheck] = Field(default_factory=list, description="The check per delivery group.")


LabelCheckKind = Literal[
    "address_error",
    "cash_on_delivery_not_available",
    "chilled_not_available",
    "frozen_not_available",
    "time_slot_not_available",
    "relay_area",
    "other",
]


class LabelCheckFailed(OrderMessage):
    """A carrier can't make the label as the order asks (seed 002's label checks): one event per violation."""

    type: Literal["LabelCheckFailed"] = Field(default="LabelCheckFailed", description="Contract name.")
    delivery_index: int = Field(ge=0, description="Which delivery group fails the check.")
    carrier: str = Field(description="The carrier whose rules were checked.")
    kind: LabelCheckKind = Field(description="Which check failed (the order's label-check flag value).")
    reason: str = Field(description="What is wrong, for the staff task.")


class ShipmentHeld(OrderMessage):
    """Shipping will not request a delivery group from the warehouse while a delivery-date or carrier label check of it
    fails (seed 002's checks hold the order): until staff change its carrier or time slot (`ChangeDeliveryMethod`) or
    confirm the check on the order (`DeliveryChecksConfirmed`). A group already at the warehouse when an edit made it
    fail is withdrawn there first."""

    type: Literal["ShipmentHeld"] = Field(default="ShipmentHeld", description="Contract name.")
    delivery_index: int = Field(ge=0, description="The delivery group held back.")
    checks: list[str] = Field(description="The failing checks: 'delivery_date' or a label-check kind.")
    reasons: list[str] = Field(description="What is wrong, for staff.")


class ShipmentHoldReleased(OrderMessage):
    """A delivery group held back by a failed check may go to the warehouse again (and is requested there if the order
    is ready to ship)."""

    type: Literal["ShipmentHoldReleased"] = Field(default="ShipmentHoldReleased", description="Contract name.")
    delivery_index: int = Field(ge=0, description="The delivery group released.")
    how: Literal["method_changed", "confirmed", "rechecked"] = Field(
        description="Staff changed the carrier or time slot, confirmed the check, or an edit's recheck passed."
    )
    carrier: str = Field(description="The carrier the group ships with now.")
    still_held: int = Field(ge=0, description="Delivery groups of the order still held after this one.")


class ShipmentDelivered(OrderMessage):
    """The carrier delivered a shipment; for cash on delivery, with the amount it collected."""

    type: Literal["ShipmentDelivered"] = Field(default="ShipmentDelivered", description="Contract name.")
    shipment_id: UUID = Field(description="ordermesh's id of the shipment.")
    delivery_index: int = Field(ge=0, description="Which delivery group was delivered.")
    delivered_at: AwareDatetime = Field(description="When the carrier delivered it.")
    cash_collected: MinorUnits | None = Field(
        default=None, ge=0, description="Cash on delivery collected, in minor units of the order's currency; none otherwise."
    )
    all_delivered: bool = Field(description="Whether every delivery group of the order is now delivered.")


class ShipmentRequestFailed(OrderMessage):
    """The warehouse did not take a shipment request after every retry: staff must act (a task)."""

    type: Literal["ShipmentRequestFailed"] = Field(default="ShipmentRequestFailed", description="Contract name.")
    shipment_id: UUID = Field(description="ordermesh's id of the shipment.")
    delivery_index: int = Field(ge=0, description="Which delivery group could not be requested.")
    attempts: int = Field(ge=1, description="How many times the request was tried.")
    reason: str = Field(description="The last failure: timeout, the warehouse's status and answer.")


class OrderShippingCancelled(OrderMessage):
    """Shipping honoured a cancellation: every unshipped shipment is cancelled (at the warehouse too), and stock
    was released if staff asked. From now on shipping allocates nothing and requests nothing for the order."""

    type: Literal["OrderShippingCancelled"] = Field(default="OrderShippingCancelled", description="Contract name.")
    shipments_cancelled: int = Field(ge=0, description="Shipments cancelled by this cancellation (0 when none was requested yet).")
    stock_released: bool = Field(
        description="Whether the order's allocated stock went back to available (the cancellation's restore_stock choice)."
    )
    released: list[ShippedLine] = Field(
        default_factory=list, description="Units given back to available stock, per sku (empty when nothing was released)."
    )


class ShipmentCancelFailed(OrderMessage):
    """A shipment of a cancelled order could not be cancelled (it already shipped, or the warehouse refused or
    never answered): staff must stop it at the warehouse (a task). One event per such shipment; the units of
    that shipment stay allocated, the rest of the order is cancelled as asked."""

    type: Literal["ShipmentCancelFailed"] = Field(default="ShipmentCancelFailed", description="Contract name.")
    shipment_id: UUID = Field(description="ordermesh's id of the shipment.")
    delivery_index: int = Field(ge=0, description="Which delivery group could not be cancelled.")
    reason: str = Field(description="Why: already shipped, the warehouse's status and answer, or the last failure.")
    stock_released: bool = Field(
        description="Whether the rest of the order's allocated stock went back to available (restore_stock)."
    )


class ShippingEditApplied(OrderMessage):
    """Shipping honoured an order edit: allocation follows the new quantities (unless staff chose not to adjust
    stock), and unshipped warehouse requests were updated or cancelled and requested again."""

    type: Literal["ShippingEditApplied"] = Field(default="ShippingEditApplied", description="Contract name.")
    edit_no: int = Field(ge=1, description="The edit this answers.")
    stock_adjusted: bool = Field(description="Whether stock followed the edit (the edit's adjust_stock choice).")
    allocation: Literal["full", "partial", "none"] = Field(description="How much of the edited order is covered now.")
    released: list[ShippedLine] = Field(default_factory=list, description="Units given back to available stock.")
    allocated: list[ShippedLine] = Field(default_factory=list, description="Units newly set aside.")
    shipments_reissued: int = Field(ge=0, description="Unshipped warehouse requests cancelled and requested again.")


class ShippingEditRefused(OrderMessage):
    """Shipping could not honour an edit of a delivery that the warehouse already picked or shipped: stock and the
    warehouse request stay as they were; staff must reverse the edit or deal with the parcel (a task)."""

    type: Literal["ShippingEditRefused"] = Field(default="ShippingEditRefused", description="Contract name.")
    edit_no: int = Field(ge=1, description="The edit this answers.")
    delivery_index: int = Field(ge=0, description="The delivery group that could not follow the edit.")
    reason: str = Field(description="Why: already picked or shipped, or the warehouse's answer.")


ShippingEvent = Annotated[
    StockAllocated
    | ShipmentRequested
    | ShipmentShipped
    | DeliveryDateChecked
    | LabelCheckFailed
    | ShipmentDelivered
    | ShipmentRequestFailed
    | OrderShippingCancelled
    | ShipmentCancelFailed
    | ShippingEditApplied
    | ShippingEditRefused
    | ShipmentHeld
    | ShipmentHoldReleased,
    Field(discriminator="type"),
]
"""Everything on `shipping.events.v1`."""


class WarehouseShipmentReported(Message):
    """A verified report from a warehouse that a requested shipment left (on `shipping.callbacks.v1`)."""

    type: Literal["WarehouseShipmentReported"] = Field(
        default="WarehouseShipmentReported", description="Contract name."
    )
    shipment_id: UUID = Field(description="ordermesh's id of the shipment.")
    order_id: UUID = Field(description="The order.")
    warehouse_request_id: str = Field(description="The warehouse's id of the request.")
    carrier: str = Field(description="Carrier that has the parcel.")
    tracking_number: str = Field(min_length=1, description="The carrier's tracking number.")
    shipped_at: AwareDatetime = Field(description="When it left the warehouse.")
    lines: list[ShippedLine] = Field(description="What shipped.")

    def kafka_key(self) -> str:
        """The Kafka key: the order id."""
        return str(self.order_id)


class WarehouseDeliveryReported(Message):
    """A verified report that a shipment was delivered, with cash collected on delivery (on `shipping.callbacks.v1`)."""

    type: Literal["WarehouseDeliveryReported"] = Field(
        default="WarehouseDeliveryReported", description="Contract name."
    )
    shipment_id: UUID = Field(description="ordermesh's id of the shipment.")
    order_id: UUID = Field(description="The order.")
    warehouse_request_id: str = Field(description="The warehouse's id of the request.")
    delivered_at: AwareDatetime = Field(description="When the parcel was delivered.")
    cash_collected: MinorUnits | None = Field(default=None, ge=0, description="Cash on delivery collected, minor units.")

    def kafka_key(self) -> str:
        """The Kafka key: the order id."""
        return str(self.order_id)


ShippingCallback = Annotated[WarehouseShipmentReported | WarehouseDeliveryReported, Field(discriminator="type")]
"""Everything on `shipping.callbacks.v1`."""


class StockLevel(BaseModel):
    """Units on hand of one sku in one warehouse."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(min_length=1, max_length=64, description="Stock-keeping unit.")
    warehouse: str = Field(default="main", min_length=1, max_length=64, description="Warehouse holding it.")
    on_hand: int = Field(description="Units on hand; a negative number is refused with its line number.")
    cool_type: Literal["normal", "chilled", "frozen"] | None = Field(
        default=None, description="How the sku must travel; none leaves it as it is (normal when never set)."
    )


class ImportStock(Command):
    """Sets stock levels from lines or from a CSV file (`sku,warehouse,on_hand[,cool_type]` with a header).

    All or nothing: any bad line (unknown sku, negative or malformed quantity, below what is allocated)
    refuses the whole import with every line number and reason. A sku is known once shipping has stock
    for it or has seen it in an order; `allow_new_skus` admits new ones. Orders waiting for stock are
    then allocated, oldest first.
    """

    type: Literal["ImportStock"] = Field(default="ImportStock", description="Contract name.")
    lines: list[StockLevel] = Field(default_factory=list, description="Stock levels (line numbers count from 1).")
    csv: str | None = Field(default=None, max_length=5_000_000, description="A stock CSV file's text, instead of lines.")
    allow_new_skus: bool = Field(default=False, description="Whether skus shipping has never seen may be created.")


class ExportLabels(Command):
    """Writes carrier label data (Yamato B2 Cloud CSV) for shipments; answered with the file, base64, in details."""

    type: Literal["ExportLabels"] = Field(default="ExportLabels", description="Contract name.")
    shipment_ids: list[UUID] | None = Field(
        default=None, description="The shipments to label; none means every requested, unshipped Yamato shipment of the shop."
    )


class ImportTrackingCsv(Command):
    """Imports a carrier's issued-labels file: tracking numbers joined on our management number (the shipment id).

    Each line is applied or rejected on its own (unknown management number, bad check digit, a number
    another shipment already has); applied lines ship their shipment.
    """

    type: Literal["ImportTrackingCsv"] = Field(default="ImportTrackingCsv", description="Contract name.")
    csv: str = Field(min_length=1, max_length=5_000_000, description="The issued-labels file's text (decoded from cp932).")
    carrier: str = Field(default="yamato", description="Carrier that issued the labels.")


class Shipper(BaseModel):
    """The sender block printed on labels (personal data of the shop)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, description="Sender name.")
    phone: str = Field(min_length=1, max_length=20, description="Sender phone number.")
    postal_code: str = Field(min_length=3, max_length=10, description="Sender postal code.")
    address: str = Field(min_length=1, max_length=128, description="Sender address.")
    building: str = Field(default="", max_length=64, description="Building, floor, room.")


class SetShopShipping(Command):
    """Sets the shop's shipping calendar and shipper block; fields left out keep their current value.

    Refused with every reason for an unknown time zone, a weekday outside 0–6 (Monday = 0), or every weekday closed.
    """

    type: Literal["SetShopShipping"] = Field(default="SetShopShipping", description="Contract name.")
    time_zone: str | None = Field(default=None, max_length=64, description="IANA time zone, e.g. Asia/Tokyo.")
    cutoff: str | None = Field(
        default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Same-day shipping cutoff, HH:MM local time."
    )
    closed_weekdays: list[int] | None = Field(default=None, description="Weekdays the warehouse doesn't ship, Monday = 0.")
    closures: list[date] | None = Field(default=None, description="Extra closed days (holidays of the shop).")
    warehouse_prefecture: str | None = Field(default=None, max_length=16, description="Prefecture parcels leave from.")
    shipper: Shipper | None = Field(default=None, description="Sender block for labels.")


class ChangeDeliveryMethod(Command):
    """Changes how one delivery group of an order ships — its carrier and/or time slot — while it has not left, and
    checks it again: a group held by a failed label check goes to the warehouse once the new method passes. Refused
    with the reasons (and nothing changes) when the new method fails too, or the group already left."""

    type: Literal["ChangeDeliveryMethod"] = Field(default="ChangeDeliveryMethod", description="Contract name.")
    order_id: UUID = Field(description="The order; it must belong to `shop_id`.")
    delivery_index: int = Field(default=0, ge=0, description="Which delivery group.")
    carrier: str | None = Field(default=None, min_length=1, max_length=32, description="New carrier; none keeps it.")
    time_slot: str | None = Field(
        default=None, pattern=r"^(\d{2}-\d{2}|any)$", description="New time slot, or 'any' for none; none keeps it."
    )


ShippingCommand = Annotated[
    ImportStock | ExportLabels | ImportTrackingCsv | SetShopShipping | ChangeDeliveryMethod, Field(discriminator="type")
]
"""Everything on `shipping.commands.v1`."""
