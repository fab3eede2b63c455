"""Which mails go out and to whom: shop settings, not-applicable reasons, addresses, tracking links, retries."""

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from ordermesh_contracts import MailKind

TRACKING_URLS = {
    "yamato": "https://toi.kuronekoyamato.co.jp/cgi-bin/tneko?number00=1&number01={tracking_number}",
    "sagawa": "https://k2k.sagawa-exp.co.jp/p/web/okurijosearch.do?okurijoNo={tracking_number}",
    "japanpost": "https://trackings.post.japanpost.jp/services/srv/search/direct?reqCodeNo1={tracking_number}",
}
DEFAULT_SIGNATURE = "ordermesh demo shop"
DEFAULT_DISABLED_KINDS = frozenset({MailKind.PREPARING_SHIPMENT, MailKind.POINTS_CONFIRMED})
"""Kinds a shop must turn on: not every shop mails "preparing shipment" or points."""
TURNED_OFF = "turned off"
NO_ADDRESS = "no e-mail address"
CONTACT_GRACE = timedelta(minutes=10)
_ADDRESS = re.compile(r"^[^@\s<>\"(),;:\\\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


@dataclass(frozen=True)
class ShopMailSettings:
    """A shop's mail settings: template language, signature, charset, and the kinds it turned off."""

    language: str = "ja"
    signature: str = DEFAULT_SIGNATURE
    encoding: str = "utf-8"
    disabled_kinds: frozenset[MailKind] = field(default_factory=lambda: DEFAULT_DISABLED_KINDS)


SETTING_FIELDS = ("language", "signature", "encoding", "disabled_kinds")
"""The fields of SetShopMailSettings that set a shop's mail settings."""


def settings_after(current: ShopMailSettings, given: dict[str, Any]) -> ShopMailSettings:
    """The shop's settings once the fields staff gave are set; every field left out keeps its value (for a shop
    without settings: the default, so kinds that are off by default stay off)."""
    unknown = set(given) - set(SETTING_FIELDS)
    if unknown:
        raise ValueError(f"not a mail setting: {', '.join(sorted(unknown))}")
    changed = {**given}
    if "disabled_kinds" in changed:
        changed["disabled_kinds"] = frozenset(MailKind(kind) for kind in changed["disabled_kinds"])
    return replace(current, **changed)


def mail_id_for(order_id: UUID, kind: MailKind, cause_id: UUID) -> UUID:
    """The mail for one (order, kind, cause): stable, and the base of its Message-ID."""
    return uuid5(NAMESPACE_URL, f"ordermesh-mail:{order_id}/{kind.value}/{cause_id}")


def why_not_applicable(kind: MailKind, email: str | None, settings: ShopMailSettings, *, by_staff: bool = False) -> str | None:
    """Why no mail of `kind` goes out (the shop turned it off, or there is no address); None if it should.

    Staff sending a mail on purpose overrides a kind the shop turned off, never a missing address.
    """
    if kind in settings.disabled_kinds and not by_staff:
        return TURNED_OFF
    if not email:
        return NO_ADDRESS
    return None


def address_problem(email: str) -> str | None:
    """Why an address cannot be mailed to, if it cannot."""
    if any(ch in email for ch in "\r\n"):
        return "invalid address: contains a line break"
    if not _ADDRESS.match(email.strip()):
        return "invalid address: not of the form name@domain"
    if len(email) > 254:
        return "invalid address: longer than 254 characters"
    return None


def mask_address(email: str | None) -> str | None:
    """An address as staff lists show it: first letter of the mailbox, the domain."""
    if not email:
        return email
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def tracking_url(carrier: str, tracking_number: str) -> str | None:
    """The carrier's tracking page for a parcel, if ordermesh knows the carrier."""
    template = TRACKING_URLS.get(carrier.split("_", 1)[0].lower())
    return template.format(tracking_number=tracking_number) if template else None


def order_variables(contact: dict[str, Any]) -> dict[str, Any]:
    """Template variables that come from the order (kept from OrderAccepted, then from each OrderEdited)."""
    summary = contact.get("summary") or {}
    return {
        "customer_name": contact["name"],
        "external_order_no": contact["external_order_no"],
        "shop_id": contact["shop_id"],
        "device": contact["device"],
        "currency": summary.get("currency", "JPY"),
        "lines": summary.get("lines", []),
        "deliveries": summary.get("deliveries", []),
        "total": summary.get("total", 0),
        "shipping_fee": summary.get("shipping_fee", 0),
        "payment_fee": summary.get("payment_fee", 0),
        "order_discount": summary.get("order_discount", 0),
        "points_used": summary.get("points_used", 0),
        "tax_breakdown": summary.get("tax_breakdown", []),
        "payment_method": summary.get("payment_method", ""),
    }


CARRIER_NAMES: dict[str, dict[str, str]] = {
    "yamato": {"ja": "ヤマト運輸", "en": "Yamato Transport"},
    "sagawa": {"ja": "佐川急便", "en": "Sagawa Express"},
    "japanpost": {"ja": "日本郵便", "en": "Japan Post"},
    "seino": {"ja": "西濃運輸", "en": "Seino Transportation"},
    "fukuyama": {"ja": "福山通運", "en": "Fukuyama Transporting"},
}
"""Carriers as customers know them, per mail language (`yamato_b2` is Yamato too: only the label route differs)."""


def with_names(variables: dict[str, Any], language: str) -> dict[str, Any]:
    """The variables with what depends on the mail's language: the carrier's name as customers know it."""
    if isinstance(variables.get("carrier"), str) and "carrier_name" not in variables:
        return {**variables, "carrier_name": carrier_name(variables["carrier"], language)}
    return variables


def carrier_name(carrier: str, language: str) -> str:
    """The carrier's name in the mail's language (the code itself for a carrier ordermesh does not know)."""
    names = CARRIER_NAMES.get(carrier.split("_", 1)[0].lower())
    return names.get(language, names["en"]) if names else carrier


def should_wait_for_contact(cause_occurred_at: datetime, now: datetime) -> bool:
    """A mail's cause can overtake the OrderAccepted it follows (other topic): wait a while, then give up."""
    return now - cause_occurred_at < CONTACT_GRACE


def gives_up_on_deferral(attempts: int, limit: int) -> bool:
    """A recipient the server keeps deferring (4xx for this address only) ends as failed after `limit` attempts,
    so one mailbox cannot hold back every other order's mail."""
    return attempts >= limit
