"""Contracts of the points service: events on `points.events.v1` (keyed by shop and customer) and staff commands
on `points.commands.v1`."""

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .commands import Command
from .envelope import Message, OrderMessage


class _CustomerKeyed:
    def kafka_key(self) -> str:
        """Customer-scoped: `shop_id:customer_id`, so one customer's ledger stays in order."""
        return f"{self.shop_id}:{self.customer_id}"  # type: ignore[attr-defined]


class _CustomerPoints(_CustomerKeyed, OrderMessage):
    customer_id: str = Field(description="The shop's id of the customer.")
    points: int = Field(ge=0, description="Number of points.")


class PointsAccrued(_CustomerPoints):
    """Provisional points were booked for the order (or recomputed after an edit); they count once confirmed."""

    type: Literal["PointsAccrued"] = Field(default="PointsAccrued", description="Contract name.")


class PointsConfirmed(_CustomerPoints):
    """The order's provisional points were confirmed and are now the customer's (0 when the order earns none)."""

    type: Literal["PointsConfirmed"] = Field(default="PointsConfirmed", description="Contract name.")


class PointsRedeemed(_CustomerPoints):
    """The points the order uses (`points`, its current total) are held for it from the customer's balance."""

    type: Literal["PointsRedeemed"] = Field(default="PointsRedeemed", description="Contract name.")


class PointsRedemptionFailed(_CustomerKeyed, OrderMessage):
    """The order asked to use more points than the customer has available; nothing is held for it.

    Staff must lower the points used on the order (an edit) or grant points first.
    """

    type: Literal["PointsRedemptionFailed"] = Field(default="PointsRedemptionFailed", description="Contract name.")
    customer_id: str = Field(description="The shop's id of the customer.")
    requested: int = Field(ge=0, description="Points the order asked to use.")
    available: int = Field(ge=0, description="Points the customer had available at the time.")
    reason: str = Field(description="Why the points could not be used, for staff.")


class PointsReversed(_CustomerKeyed, OrderMessage):
    """The order's points were undone (cancel, or an edit lowering confirmed points).

    Provisional points are reversed; confirmed points are never deleted but deducted, and what the balance
    could not carry is recorded as `debt` (staff must settle it); points the order held are released.
    """

    type: Literal["PointsReversed"] = Field(default="PointsReversed", description="Contract name.")
    customer_id: str = Field(description="The shop's id of the customer.")
    reversed: int = Field(ge=0, description="Provisional points reversed.")
    deducted: int = Field(ge=0, description="Confirmed points deducted from the balance.")
    debt: int = Field(ge=0, description="Confirmed points the balance could not carry, recorded as debt.")
    released: int = Field(ge=0, description="Points the order held (points used) returned to the balance.")


class _CustomerAdjustment(_CustomerKeyed, Message):
    shop_id: str = Field(min_length=1, max_length=64, description="The shop whose points these are.")
    customer_id: str = Field(description="The shop's id of the customer.")
    points: int = Field(ge=1, description="Number of points.")
    reason: str = Field(description="Why staff made the adjustment.")
    issued_by: str = Field(description="Staff member or tool that made it.")
    command_id: UUID = Field(description="The command that caused it.")
    order_id: UUID | None = Field(default=None, description="The order it is about, if any.")


class PointsGranted(_CustomerAdjustment):
    """Staff granted points to a customer by hand, with a reason."""

    type: Literal["PointsGranted"] = Field(default="PointsGranted", description="Contract name.")


class PointsDeducted(_CustomerAdjustment):
    """Staff deducted points from a customer by hand, with a reason (how confirmed points are corrected)."""

    type: Literal["PointsDeducted"] = Field(default="PointsDeducted", description="Contract name.")


class PointsExpired(_CustomerKeyed, Message):
    """Confirmed points older than the shop's expiry expired (oldest first)."""

    type: Literal["PointsExpired"] = Field(default="PointsExpired", description="Contract name.")
    shop_id: str = Field(min_length=1, max_length=64, description="The shop whose points these are.")
    customer_id: str = Field(description="The shop's id of the customer.")
    points: int = Field(ge=1, description="Points that expired.")
    as_of: date = Field(description="The day the expiry was run for.")


class PointsRecomputed(_CustomerKeyed, OrderMessage):
    """Points honoured an order edit or return: provisional points follow the new merchandise total, and the points
    held for the order follow the new points used (more held, or some given back). Confirmed points are never changed
    by an edit; a return takes back the confirmed points of what came back (a deduction, debt where the balance can't
    carry it). If more points are asked than the customer has, `PointsRedemptionFailed` follows instead."""

    type: Literal["PointsRecomputed"] = Field(default="PointsRecomputed", description="Contract name.")
    customer_id: str = Field(description="The shop's id of the customer.")
    edit_no: int = Field(ge=1, description="The edit this answers.")
    previous_provisional: int = Field(ge=0, description="The order's provisional points before.")
    provisional: int = Field(ge=0, description="The order's provisional points now.")
    previous_points_used: int = Field(ge=0, description="Points the order held before.")
    points_used: int = Field(ge=0, description="Points the order holds now.")
    confirmed_unchanged: bool = Field(
        description="True when the order's points were already confirmed, so only the points used could change."
    )
    confirmed_deducted: int = Field(
        default=0, ge=0, description="Confirmed points taken back for goods returned (`OrderReturned`); 0 for an edit."
    )
    debt: int = Field(
        default=0, ge=0, description="Of the confirmed points taken back, those the balance could not carry (debt)."
    )


PointsEvent = Annotated[
    PointsAccrued
    | PointsConfirmed
    | PointsRedeemed
    | PointsRedemptionFailed
    | PointsReversed
    | PointsGranted
    | PointsDeducted
    | PointsExpired
    | PointsRecomputed,
    Field(discriminator="type"),
]
"""Everything on `points.events.v1`."""


# --- commands ---------------------------------------------------------------------------------------------


class _Adjust(Command):
    customer_id: str = Field(min_length=1, max_length=64, description="The shop's id of the customer.")
    points: int = Field(description="Number of points; must be positive (refused with the reason otherwise).")
    reason: str | None = Field(default=None, max_length=500, description="Why; required (refused without one).")
    order_id: UUID | None = Field(default=None, description="The order the adjustment is about, if any.")

    def kafka_key(self) -> str:
        """Keyed by customer, like the ledger it changes."""
        return f"{self.shop_id}:{self.customer_id}"


class GrantPoints(_Adjust):
    """Grant points to a customer by hand, e.g. bonus points for a customer who registered after buying, or a
    sign-up bonus for one who has not ordered yet (`new_customer`)."""

    type: Literal["GrantPoints"] = Field(default="GrantPoints", description="Contract name.")
    new_customer: bool = Field(
        default=False,
        description="The customer has no order or points in this shop yet (e.g. a sign-up bonus): open their account "
        "with this grant. Without it an unknown customer is refused, so a mistyped id is not credited.",
    )


class DeductPoints(_Adjust):
    """Deduct points from a customer by hand, e.g. to correct points confirmed by mistake."""

    type: Literal["DeductPoints"] = Field(default="DeductPoints", description="Contract name.")


class BulkConfirmPoints(Command):
    """Confirm the provisional points of many orders: the listed ones, or every paid order of the shop in a period.

    Answered with one result per order; unpaid, cancelled and already-confirmed orders are skipped with the reason.
    """

    type: Literal["BulkConfirmPoints"] = Field(default="BulkConfirmPoints", description="Contract name.")
    order_ids: list[UUID] | None = Field(default=None, description="The orders to confirm; or use the period instead.")
    paid_from: AwareDatetime | None = Field(default=None, description="Orders paid at or after this time.")
    paid_until: AwareDatetime | None = Field(default=None, description="Orders paid before this time.")


class ExpirePoints(Command):
    """Expire the shop's confirmed points older than its expiry (in months) as of a day, oldest first."""

    type: Literal["ExpirePoints"] = Field(default="ExpirePoints", description="Contract name.")
    as_of: date = Field(description="The day to expire points as of.")


class PointsCampaign(BaseModel):
    """A points multiplier for orders placed in a date range (inclusive) and/or for some skus."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    multiplier: int = Field(description="Points are multiplied by this (2 = double points).")
    starts_on: date | None = Field(default=None, description="First day of the campaign; none: no start.")
    ends_on: date | None = Field(default=None, description="Last day of the campaign; none: no end.")
    skus: list[str] | None = Field(default=None, description="Skus the campaign applies to; none: every line.")


class SetPointsSettings(Command):
    """Set the shop's points rules; they apply to orders accepted from now on."""

    type: Literal["SetPointsSettings"] = Field(default="SetPointsSettings", description="Contract name.")
    rate_percent: int = Field(default=1, description="Points earned per 100 of merchandise (fees excluded).")
    campaigns: list[PointsCampaign] = Field(default_factory=list, description="Multipliers by date range and/or sku.")
    confirm_on: Literal["captured", "received", "either", "manual"] = Field(
        default="either",
        description="Which payment event confirms points automatically (manual: only staff's bulk confirm).",
    )
    confirm_on_events: list[Literal["card_captured", "deferred_captured", "prepaid_received", "cash_collected", "platform_paid"]] | None = Field(
        default=None,
        description="The payment events that confirm points, one by one (seed 004); none uses `confirm_on`.",
    )
    allow_negative: bool = Field(default=False, description="Whether deductions may take the balance below zero.")
    expiry_months: int | None = Field(default=None, description="Confirmed points expire after this many months.")


PointsCommand = Annotated[
    GrantPoints | DeductPoints | BulkConfirmPoints | ExpirePoints | SetPointsSettings, Field(discriminator="type")
]
"""Everything on `points.commands.v1`."""
