"""Contracts the points service publishes on `points.events.v1` (keyed by shop and customer)."""

from typing import Annotated, Literal

from pydantic import Field

from .envelope import OrderMessage


class _CustomerPoints(OrderMessage):
    customer_id: str = Field(description="The shop's id of the customer.")
    points: int = Field(ge=0, description="Number of points.")

    def kafka_key(self) -> str:
        """Customer-scoped: `shop_id:customer_id`, so one customer's ledger stays in order."""
        return f"{self.shop_id}:{self.customer_id}"


class PointsAccrued(_CustomerPoints):
    """Provisional points were booked for the order; they count once confirmed."""

    type: Literal["PointsAccrued"] = Field(default="PointsAccrued", description="Contract name.")


class PointsConfirmed(_CustomerPoints):
    """The order's provisional points were confirmed and are now the customer's."""

    type: Literal["PointsConfirmed"] = Field(default="PointsConfirmed", description="Contract name.")


PointsEvent = Annotated[PointsAccrued | PointsConfirmed, Field(discriminator="type")]
"""Everything on `points.events.v1`."""
