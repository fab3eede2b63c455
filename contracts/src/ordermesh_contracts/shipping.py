"""Contracts of the shipping service: events on `shipping.events.v1` and warehouse reports on its callback topic."""

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .envelope import Message, OrderMessage


class ShippedLine(BaseModel):
    """A quantity of one sku."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(description="Stock-keeping unit.")
    quantity: int = Field(ge=0, description="Units.")


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
    """The warehouse handed a shipment to the carrier."""

    type: Literal["ShipmentShipped"] = Field(default="ShipmentShipped", description="Contract name.")
    shipment_id: UUID = Field(description="ordermesh's id of the shipment.")
    delivery_index: int = Field(ge=0, description="Which delivery group shipped.")
    carrier: str = Field(description="Carrier that has the parcel.")
    tracking_number: str = Field(description="The carrier's tracking number.")
    shipped_at: AwareDatetime = Field(description="When it left the warehouse.")
    lines: list[ShippedLine] = Field(description="What shipped.")
    all_shipped: bool = Field(description="Whether every delivery group of the order has now shipped.")


ShippingEvent = Annotated[StockAllocated | ShipmentRequested | ShipmentShipped, Field(discriminator="type")]
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


ShippingCallback = Annotated[WarehouseShipmentReported, Field(discriminator="type")]
"""Everything on `shipping.callbacks.v1`."""
