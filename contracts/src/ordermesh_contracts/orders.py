"""Contracts of intake and of the order's life: what shops submit and what the orders service announces."""

from datetime import date
from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, StringConstraints, WithJsonSchema

from .envelope import Message, OrderMessage
from .money import CurrencyCode, MinorUnits


class Channel(StrEnum):
    """Where the customer placed the order."""

    OWN_SITE = "own_site"
    RAKUTEN = "rakuten"
    YAHOO = "yahoo"
    AMAZON = "amazon"
    SHOPIFY = "shopify"
    PHONE = "phone"
    FAX = "fax"


class PaymentMethod(StrEnum):
    """How the customer pays."""

    CARD = "card"
    DEFERRED = "deferred"
    BANK_TRANSFER = "bank_transfer"
    CONVENIENCE_STORE = "convenience_store"
    CASH_ON_DELIVERY = "cash_on_delivery"
    POINTS_ONLY = "points_only"
    PLATFORM = "platform"
    """Paid on the sales platform before the order reached ordermesh (e.g. Shopify Payments, a mall's own
    checkout): nothing to authorize or capture here; refunds go through the platform."""


class Device(StrEnum):
    """The device the customer ordered from; mail templates differ per device."""

    PC = "pc"
    MOBILE = "mobile"


class Stage(StrEnum):
    """The order's progress stage (seed 002)."""

    REVIEW = "review"
    AWAITING_PAYMENT = "awaiting_payment"
    AWAITING_ALLOCATION = "awaiting_allocation"
    READY_TO_SHIP = "ready_to_ship"
    SHIPPING = "shipping"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    ON_HOLD = "on_hold"
    CANCELLED = "cancelled"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Address(_Part):
    """A postal address (personal data: never logged)."""

    name: str = Field(min_length=1, max_length=200, description="Addressee's full name.")
    postal_code: str = Field(min_length=3, max_length=16, description="Postal code, e.g. 100-0001.")
    country: str = Field(default="JP", pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 country code.")
    prefecture: str = Field(min_length=1, max_length=64, description="Prefecture or state.")
    city: str = Field(min_length=1, max_length=128, description="City, ward or town.")
    line1: str = Field(min_length=1, max_length=256, description="Street, block and number.")
    line2: str | None = Field(default=None, max_length=256, description="Building, floor, room.")
    phone: str | None = Field(default=None, max_length=32, description="Phone number at this address.")


CheckedEmail = Annotated[
    str,
    StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$"),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]
"""An email address that was checked in full where it entered the suite, so readers further on only bound it:
one `@`, no whitespace (no header injection in a mail), at most 254 characters (email_validator's own limit)."""


class OrderCustomer(_Part):
    """The customer who placed the order, as the orders service announces them (personal data: never logged).

    Only the orders service publishes the events that carry it, and only after reading the shop's order with
    `Customer`, which checks the email in full (email_validator, normalized); every other service reads many of
    these events per order, so they only bound the address instead of checking it again each time.
    """

    customer_id: str = Field(min_length=1, max_length=64, description="The shop's id of the customer.")
    name: str = Field(min_length=1, max_length=200, description="Customer's full name.")
    email: CheckedEmail | None = Field(default=None, description="Where order mails go; none means no mail.")
    phone: str | None = Field(default=None, max_length=32, description="Customer's phone number.")
    member_since: date | None = Field(default=None, description="Date the customer became a member; none if a guest.")
    device: Device = Field(default=Device.PC, description="Device the order was placed from.")


class Customer(OrderCustomer):
    """The customer who placed the order, as a shop or staff send them: the email is checked in full here, once."""

    # a shop's order the orders service builds from announced ones (a split, a merge) checks their customer again
    model_config = ConfigDict(extra="forbid", frozen=True, from_attributes=True)

    email: EmailStr | None = Field(default=None, description="Where order mails go; none means no mail.")


class OrderLine(_Part):
    """One product line; prices are tax-inclusive, with the tax rate kept per line."""

    sku: str = Field(min_length=1, max_length=64, description="The shop's stock-keeping unit.")
    name: str = Field(min_length=1, max_length=256, description="Product name as shown to the customer.")
    unit_price: MinorUnits = Field(ge=0, description="Tax-inclusive unit price in minor units.")
    quantity: int = Field(description="Units ordered; must be positive at intake.")
    tax_rate_percent: int = Field(
        ge=0,
        le=100,
        description="Tax rate in whole percent included in the price: in Japan 10 (standard) or 8 (reduced, food); "
        "another rate for an order taxed abroad.",
    )
    line_discount: MinorUnits = Field(default=0, ge=0, description="Discount on this line, in minor units.")


class DeliveryGroup(_Part):
    """Lines that ship together to one address."""

    address: Address = Field(description="Where this delivery goes.")
    requested_date: date | None = Field(default=None, description="Delivery date the customer asked for, if any.")
    time_slot: str | None = Field(
        default=None, pattern=r"^\d{2}-\d{2}$", description="Requested time slot, e.g. 14-16; none for any time."
    )
    carrier: str | None = Field(default=None, max_length=32, description="Carrier asked for, e.g. yamato.")
    lines: list[OrderLine] = Field(description="The lines in this delivery; at least one.")


class Charges(_Part):
    """Order-level charges and the total the shop computed (all minor units)."""

    shipping_fee: MinorUnits = Field(default=0, ge=0, description="Shipping fee, tax-inclusive.")
    payment_fee: MinorUnits = Field(default=0, ge=0, description="Payment fee, e.g. cash-on-delivery fee.")
    order_discount: MinorUnits = Field(default=0, ge=0, description="Order-level discount.")
    points_used: int = Field(default=0, ge=0, description="Loyalty points spent on this order (1 point = 1 minor unit).")
    total: MinorUnits = Field(description="Amount the customer pays: lines + fees - discounts - points.")


class Payment(_Part):
    """How the order is paid."""

    method: PaymentMethod = Field(description="Payment method.")
    card_token: str | None = Field(default=None, max_length=128, description="Gateway token of the card (card only).")


class ShopOrderSubmitted(Message):
    """A shop's order, published by the shop (or the webhook ingress) to `shop.orders.v1`.

    `(shop_id, channel, external_order_no)` identifies the order: a re-sent order is a no-op.
    Read strictly: an unknown field from a shop is refused with a reason, never silently dropped.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["ShopOrderSubmitted"] = Field(default="ShopOrderSubmitted", description="Contract name.")
    shop_id: str = Field(min_length=1, max_length=64, description="The shop that publishes the order.")
    channel: Channel = Field(description="Where the order was placed.")
    external_order_no: str = Field(min_length=1, max_length=64, description="The order number in the shop/channel.")
    ordered_at: AwareDatetime = Field(description="When the customer ordered, timezone-aware.")
    currency: CurrencyCode
    customer: Customer = Field(description="Who ordered.")
    billing_address: Address = Field(description="The billing address.")
    deliveries: list[DeliveryGroup] = Field(description="One or more delivery groups.")
    charges: Charges = Field(description="Fees, discounts, points and the total.")
    payment: Payment = Field(description="Payment method and token.")
    remarks: str | None = Field(default=None, max_length=2000, description="The customer's remarks.")
    checks_for_staff: list[Annotated[str, Field(max_length=500)]] = Field(
        default_factory=list,
        max_length=20,
        description="What the sender could not express exactly and staff must check (e.g. the webhook ingress: an "
        "unknown payment gateway, a platform total that does not add up); the order is taken in held for staff "
        "by a blocking task listing them.",
    )

    @property
    def order_id(self) -> UUID:
        """The ordermesh id the order is (or will be) accepted under: `order_id_for` its shop, channel and number."""
        return order_id_for(self.shop_id, self.channel.value, self.external_order_no)


class OrderAccepted(OrderMessage):
    """The orders service accepted a shop order; carries what downstream services need to act."""

    type: Literal["OrderAccepted"] = Field(default="OrderAccepted", description="Contract name.")
    channel: Channel = Field(description="Where the order was placed.")
    external_order_no: str = Field(description="The order number in the shop/channel.")
    currency: CurrencyCode
    customer: OrderCustomer = Field(description="Who ordered.")
    deliveries: list[DeliveryGroup] = Field(description="Delivery groups with their lines.")
    charges: Charges = Field(description="Fees, discounts, points and the total.")
    merchandise_total: MinorUnits = Field(description="Sum of lines after line discounts, tax-inclusive.")
    payment: Payment = Field(description="Payment method and token.")
    mail_texts: dict[str, str] = Field(
        default_factory=dict, description="Text a shop's rules insert into customer mails, by mail kind."
    )
    remarks: str | None = Field(default=None, description="The customer's remarks.")


class OrderRejected(Message):
    """A shop order that could not be accepted, published to `shop.updates.v1` with every reason."""

    type: Literal["OrderRejected"] = Field(default="OrderRejected", description="Contract name.")
    shop_id: str = Field(description="The shop that submitted the order.")
    channel: str | None = Field(default=None, description="The channel, if it could be read.")
    external_order_no: str = Field(description="The shop's order number.")
    reasons: list[str] = Field(min_length=1, description="Every reason the order was rejected.")


class ShopOrderAccepted(OrderMessage):
    """Tells the shop its order was accepted and under which ordermesh id (on `shop.updates.v1`)."""

    type: Literal["ShopOrderAccepted"] = Field(default="ShopOrderAccepted", description="Contract name.")
    channel: Channel = Field(description="Where the order was placed.")
    external_order_no: str = Field(description="The shop's order number.")


class ShopOrderShipped(OrderMessage):
    """Tells the shop a delivery of its order shipped, with the tracking number (on `shop.updates.v1`)."""

    type: Literal["ShopOrderShipped"] = Field(default="ShopOrderShipped", description="Contract name.")
    external_order_no: str = Field(description="The shop's order number.")
    carrier: str = Field(description="Carrier that has the parcel.")
    tracking_number: str = Field(description="The carrier's tracking number.")


class OrderProgressed(OrderMessage):
    """The order moved from one stage to another.

    `to_stage` also travels as the record's `to_stage` header: most consumers act on one or two stages and skip the
    others unread."""

    HEADER_FIELD: ClassVar[str | None] = "to_stage"

    type: Literal["OrderProgressed"] = Field(default="OrderProgressed", description="Contract name.")
    from_stage: Stage = Field(description="Stage before.")
    to_stage: Stage = Field(description="Stage now.")
    mode: Literal["auto", "manual"] = Field(default="auto", description="Whether the move was automatic.")


class DeliveryChecksConfirmed(OrderMessage):
    """Staff confirmed a failed delivery-date or carrier label check of the order (they settled it with the customer or
    the carrier): shipping stops holding the order's delivery groups for those checks."""

    type: Literal["DeliveryChecksConfirmed"] = Field(default="DeliveryChecksConfirmed", description="Contract name.")
    checks: list[Literal["delivery_date", "label"]] = Field(min_length=1, description="Which kinds of check staff confirmed.")
    confirmed_by: str = Field(description="Staff member who confirmed them.")


class OrderCompleted(OrderMessage):
    """Payment settled, points confirmed and the shipped mail sent (or not applicable): the order is done."""

    type: Literal["OrderCompleted"] = Field(default="OrderCompleted", description="Contract name.")
    external_order_no: str = Field(description="The shop's order number.")


class OrderCancelled(OrderMessage):
    """Staff cancelled the whole order before anything shipped; each service reverses its own effects as asked.

    The three choices are explicit (seed 000): a cancellation alone restores no stock, cancels no payment and
    mails nobody unless asked. Every service answers with its own event, which the order shows as a flag.
    """

    type: Literal["OrderCancelled"] = Field(default="OrderCancelled", description="Contract name.")
    external_order_no: str = Field(description="The shop's order number.")
    customer_id: str = Field(description="The shop's id of the customer (points are reversed on their ledger).")
    reason: str = Field(description="Why it was cancelled, from staff.")
    restore_stock: bool = Field(description="Release allocated stock and cancel warehouse requests.")
    cancel_payment: bool = Field(description="Void the authorization, refund what was captured, or cancel the payment request.")
    notify_customer: bool = Field(description="Send the customer the cancellation mail.")
    cancelled_by: str = Field(description="Staff member who cancelled it.")


class LineDiff(_Part):
    """How one sku of one delivery group changed in an edit; quantities are net (a negative line booked to keep a
    cancelled quantity on record counts against the sku's line)."""

    delivery_index: int = Field(ge=0, description="Which delivery group of the order.")
    sku: str = Field(description="The sku.")
    change: Literal["added", "changed", "removed", "returned", "cancelled_booked", "discount_changed"] = Field(
        description="What the edit did: a new line, a new quantity, a removed line, a line set to 0 (kept on record), "
        "a negative line booked beside it, or only its manual discount."
    )
    previous_quantity: int = Field(ge=0, description="Net units before the edit (0 for an added line).")
    quantity: int = Field(ge=0, description="Net units after the edit (0 for a removed or returned line).")
    unit_price: MinorUnits = Field(ge=0, description="Tax-inclusive unit price.")
    previous_line_discount: MinorUnits = Field(ge=0, description="Manual line discount before.")
    line_discount: MinorUnits = Field(ge=0, description="Manual line discount after.")


class OrderEdited(OrderMessage):
    """Staff edited the order (lines, fees, points used, manual line discounts), committed as one unit.

    Carries the diff, the order as it now is, and the **balance** against what the customer has actually paid:
    every service honours it (payments changes the amount, refunds or asks for the balance; shipping follows
    the new quantities; points recomputes; notify mails the change if asked).
    """

    type: Literal["OrderEdited"] = Field(default="OrderEdited", description="Contract name.")
    edit_no: int = Field(ge=1, description="The order's edits counted from 1.")
    external_order_no: str = Field(description="The shop's order number.")
    customer: OrderCustomer = Field(description="Who ordered (points and mails need them).")
    currency: CurrencyCode
    payment: Payment = Field(description="Payment method and token.")
    changes: list[LineDiff] = Field(description="Each line the edit touched.")
    deliveries: list[DeliveryGroup] = Field(description="Delivery groups with their lines after the edit.")
    previous_charges: Charges = Field(description="Fees, discounts, points and total before the edit.")
    charges: Charges = Field(description="Fees, discounts, points and total after the edit.")
    merchandise_total: MinorUnits = Field(description="Sum of lines after line discounts, after the edit.")
    paid: MinorUnits = Field(ge=0, description="What the customer has paid so far (captured or received, less refunds).")
    balance: MinorUnits = Field(
        description="New total minus what was paid, once anything was paid: positive is a balance due from the "
        "customer, negative a refund owed; 0 when settled or when nothing was collected yet."
    )
    adjust_stock: bool = Field(description="Whether stock follows the new quantities (staff's explicit choice).")
    notify_customer: bool = Field(description="Send the customer the 'your order was changed' mail.")
    reason: str = Field(description="Why staff edited it.")
    edited_by: str = Field(description="Staff member who edited it.")


class ReturnedLine(_Part):
    """Units of one sku of one delivery group that came back after shipping."""

    delivery_index: int = Field(ge=0, description="Which delivery group of the order.")
    sku: str = Field(description="The sku.")
    name: str = Field(description="Product name as shown to the customer.")
    quantity: int = Field(ge=1, description="Units returned now.")
    unit_price: MinorUnits = Field(ge=0, description="Tax-inclusive unit price.")
    tax_rate_percent: int = Field(ge=0, le=100, description="Consumption tax rate in percent.")
    amount: MinorUnits = Field(ge=0, description="What the units are worth back: price less their share of the line discount.")


class OrderReturned(OrderMessage):
    """Goods came back after shipping (seed 000's return, whole or part of a line): the order's total goes down by
    `amount`, and every service follows it — payments refunds the part (card) or keeps it as a refund owed
    (prepaid, cash on delivery, platform), points takes back the points of what came back (provisional ones
    recomputed, confirmed ones deducted), shipping puts the units back in stock only when `restock`, notify mails the
    customer only when `notify_customer`.

    A return is numbered in the same sequence as the order's edits (`edit_no`), so a service that follows the order's
    total honours edits and returns in the order they were made. It is a separate event rather than an `OrderEdited`
    because shipped delivery groups can't be edited: a consumer that predates returns skips it instead of refusing it.
    """

    type: Literal["OrderReturned"] = Field(default="OrderReturned", description="Contract name.")
    edit_no: int = Field(ge=1, description="The order's edits and returns counted from 1.")
    return_no: int = Field(ge=1, description="The order's returns counted from 1.")
    external_order_no: str = Field(description="The shop's order number.")
    customer: OrderCustomer = Field(description="Who ordered (points and mails need them).")
    currency: CurrencyCode
    payment: Payment = Field(description="Payment method and token.")
    lines: list[ReturnedLine] = Field(min_length=1, description="What came back.")
    amount: MinorUnits = Field(ge=0, description="What the returned units are worth: the order's total goes down by it.")
    deliveries: list[DeliveryGroup] = Field(
        description="Delivery groups after the return: each returned quantity booked as a negative line beside its line."
    )
    previous_charges: Charges = Field(description="Fees, discounts, points and total before the return.")
    charges: Charges = Field(description="Fees, discounts, points and total after the return.")
    merchandise_total: MinorUnits = Field(description="Sum of lines after line discounts, after the return.")
    paid: MinorUnits = Field(ge=0, description="What the customer has paid so far (captured or received, less refunds).")
    balance: MinorUnits = Field(
        description="New total minus what was paid: negative is what is owed back to the customer."
    )
    restock: bool = Field(description="Whether the returned units go back into stock (staff's explicit choice).")
    notify_customer: bool = Field(description="Send the customer the 'your order was changed' mail about the return.")
    reason: str = Field(description="Why the goods came back.")
    returned_by: str = Field(description="Staff member who booked the return.")


class OrderSplit(OrderMessage):
    """Part of the order moved to a new delivery group or to a new order; the money and stock follow through the
    source's `OrderEdited` and the new order's `OrderAccepted`. For the shop and staff to see what happened."""

    type: Literal["OrderSplit"] = Field(default="OrderSplit", description="Contract name.")
    into: Literal["delivery", "order"] = Field(description="A new delivery group of this order, or a new order.")
    new_order_id: UUID | None = Field(description="The new order (into=order), none for a new delivery group.")
    new_delivery_index: int | None = Field(description="The new delivery group (into=delivery), none for a new order.")
    edit_no: int = Field(ge=1, description="The source order's edit that took the units out.")
    split_by: str = Field(description="Staff member who split it.")


class OrdersMerged(OrderMessage):
    """Orders were merged into this new order (`order_id`); each source was cancelled with the reason "merged"."""

    type: Literal["OrdersMerged"] = Field(default="OrdersMerged", description="Contract name.")
    external_order_no: str = Field(description="The merged order's number.")
    source_order_ids: list[UUID] = Field(min_length=2, description="The orders merged into it.")
    merged_by: str = Field(description="Staff member who merged them.")


OrdersEvent = Annotated[
    OrderAccepted
    | OrderProgressed
    | OrderCompleted
    | OrderCancelled
    | OrderEdited
    | OrderSplit
    | OrdersMerged
    | DeliveryChecksConfirmed
    | OrderReturned,
    Field(discriminator="type"),
]
"""Everything on `orders.events.v1`."""

ShopUpdate = Annotated[OrderRejected | ShopOrderAccepted | ShopOrderShipped, Field(discriminator="type")]
"""Everything on `shop.updates.v1`."""

ShopOrder = Annotated[ShopOrderSubmitted, Field(discriminator="type")]
"""Everything on `shop.orders.v1`."""


def order_id_for(shop_id: str, channel: str, external_order_no: str) -> UUID:
    """The ordermesh order id of a shop order: stable, so a re-sent order maps to the same id."""
    return uuid5(NAMESPACE_URL, f"ordermesh:{shop_id}/{channel}/{external_order_no}")
