"""How many provisional points an order earns: the shop's rate, campaign multipliers, members only, rounded down."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from .confirmation import NOTHING_DUE, Payment, PaymentEvent

DEFAULT_RATE_PERCENT = 1

ConfirmOn = Literal["captured", "received", "either", "manual"]


@dataclass(frozen=True)
class Campaign:
    """A points multiplier for orders placed in a date range (inclusive) and/or for a set of skus.

    A campaign without dates runs always; without skus it applies to every line.
    """

    multiplier: int
    starts_on: date | None = None
    ends_on: date | None = None
    skus: frozenset[str] | None = None

    def applies_to(self, sku: str, ordered_on: date) -> bool:
        """Whether this campaign multiplies the points of a line of `sku` ordered on `ordered_on`."""
        if self.starts_on is not None and ordered_on < self.starts_on:
            return False
        if self.ends_on is not None and ordered_on > self.ends_on:
            return False
        return self.skus is None or sku in self.skus


@dataclass(frozen=True)
class ShopPointsSettings:
    """A shop's points rules; a shop without its own settings gets these defaults."""

    rate_percent: int = DEFAULT_RATE_PERCENT
    campaigns: tuple[Campaign, ...] = ()
    confirm_on: ConfirmOn = "either"
    allow_negative: bool = False
    expiry_months: int | None = None
    confirm_on_events: tuple[PaymentEvent, ...] | None = None
    """The payment events that confirm, one by one (empty: staff confirm by hand only); None: `confirm_on` holds."""

    def confirms_on(self, payment_event: Literal["captured", "received"]) -> bool:
        """Whether a payment event of this kind confirms an order's points automatically, by `confirm_on` alone."""
        return self.confirm_on == "either" or self.confirm_on == payment_event

    @property
    def manual_only(self) -> bool:
        """Whether only staff confirm points (no payment event does)."""
        return self.confirm_on_events == () if self.confirm_on_events is not None else self.confirm_on == "manual"

    def confirms(self, payment: Payment, order_method: str | None) -> bool | None:
        """Whether `payment` of an order paid by `order_method` confirms its points automatically; None while that
        depends on the order's payment method and it is not known yet (the payment came before the acceptance)."""
        if self.manual_only:
            return False
        event = payment.event(order_method)
        if event == NOTHING_DUE:
            return True
        if self.confirm_on_events is None and self.confirms_on(payment.kind):
            return True
        if event is None:
            return None
        return self.confirm_on_events is not None and event in self.confirm_on_events

    def confirms_any(self, payments: Iterable[Payment], order_method: str | None) -> bool:
        """Whether any of these payments (kept until the order's method was known) confirms its points now."""
        return any(self.confirms(payment, order_method) for payment in payments)


def validate_settings(settings: ShopPointsSettings) -> list[str]:
    """Every reason these settings can't be used (empty when they can)."""
    reasons = []
    if not 0 <= settings.rate_percent <= 100:
        reasons.append(f"rate_percent must be between 0 and 100, not {settings.rate_percent}")
    if settings.expiry_months is not None and settings.expiry_months < 1:
        reasons.append(f"expiry_months must be at least 1 (or none for no expiry), not {settings.expiry_months}")
    for number, campaign in enumerate(settings.campaigns, start=1):
        if campaign.multiplier < 1:
            reasons.append(f"campaign {number}: multiplier must be at least 1, not {campaign.multiplier}")
        if campaign.starts_on and campaign.ends_on and campaign.ends_on < campaign.starts_on:
            reasons.append(f"campaign {number}: ends_on {campaign.ends_on} is before starts_on {campaign.starts_on}")
        if campaign.skus is not None and not campaign.skus:
            reasons.append(f"campaign {number}: an empty sku set would apply to nothing; leave it out for every sku")
    return reasons


@dataclass(frozen=True)
class EarningLine:
    """The part of an order line that earns points: its sku and its amount after the line discount."""

    sku: str
    amount: int


def is_member_when_ordered(member_since: date | None, ordered_on: date) -> bool:
    """Bonus points go only to customers who were members when they bought (seed 004)."""
    return member_since is not None and member_since <= ordered_on


def order_points(
    lines: Iterable[EarningLine], *, ordered_on: date, member_since: date | None, settings: ShopPointsSettings
) -> int:
    """Provisional points of an order: rate × the best applying campaign multiplier per line, rounded down once.

    Shipping and payment fees are not lines, so they never earn points. Campaigns do not stack: a line
    gets the highest multiplier among the campaigns that apply to it.
    """
    if not is_member_when_ordered(member_since, ordered_on):
        return 0
    weighted = 0
    for sku, amount in net_by_sku(lines).items():
        if amount <= 0:
            continue
        multiplier = max((c.multiplier for c in settings.campaigns if c.applies_to(sku, ordered_on)), default=1)
        weighted += amount * multiplier
    return weighted * settings.rate_percent // 100


def net_by_sku(lines: Iterable[EarningLine]) -> dict[str, int]:
    """Each sku's amount over all its lines: an edit's negative line (a cancelled quantity kept on record) counts
    against the sku's other lines."""
    amounts: dict[str, int] = {}
    for line in lines:
        amounts[line.sku] = amounts.get(line.sku, 0) + line.amount
    return amounts


@dataclass(frozen=True)
class EarningTerms:
    """What an order earned by at acceptance: the day it was ordered, the customer's membership then, and the shop's
    rate and campaigns then. Kept with the order so that an edit earns by the same rules."""

    ordered_on: date
    member_since: date | None
    rate_percent: int = DEFAULT_RATE_PERCENT
    campaigns: tuple[Campaign, ...] = ()

    @classmethod
    def at_acceptance(cls, ordered_on: date, member_since: date | None, settings: ShopPointsSettings) -> "EarningTerms":
        """The terms of an order accepted under the shop's current settings."""
        return cls(ordered_on, member_since, settings.rate_percent, settings.campaigns)

    def points_for(self, lines: Iterable[EarningLine]) -> int:
        """The provisional points these lines earn under these terms."""
        settings = ShopPointsSettings(rate_percent=self.rate_percent, campaigns=self.campaigns)
        return order_points(lines, ordered_on=self.ordered_on, member_since=self.member_since, settings=settings)


def provisional_points(merchandise_total: int, *, is_member: bool, rate_percent: int = DEFAULT_RATE_PERCENT) -> int:
    """Points for a member's order: a percentage of merchandise (no fees), rounded down; guests earn none."""
    if not is_member or merchandise_total <= 0:
        return 0
    return merchandise_total * rate_percent // 100
