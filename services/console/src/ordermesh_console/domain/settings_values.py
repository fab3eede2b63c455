"""A shop's current settings (as the services' read endpoints answer them) as the values of the console's settings
forms, and the points settings form as the `SetPointsSettings` it asks for."""

from collections.abc import Mapping
from datetime import date
from typing import Any

from ordermesh_contracts import PointsCampaign, SetPointsSettings
from pydantic import ValidationError

from .actions import FormError

POINTS_EVENTS = ("card_captured", "deferred_captured", "prepaid_received", "cash_collected", "platform_paid")
"""The payment events that may confirm points one by one (SetPointsSettings.confirm_on_events)."""


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


def payment_form(current: Mapping[str, Any] | None) -> dict[str, str]:
    """The payment settings form filled with the shop's settings (payments' /api/payments/settings answer)."""
    if not current:
        return {}
    return {
        "card_gateway": str(current["card_gateway"]),
        "capture_at_authorization": _yes_no(current["capture_at_authorization"]),
        "authorization_valid_days": str(current["authorization_valid_days"]),
        "reauthorize_expiring": _yes_no(current["reauthorize_expiring"]),
        "prepaid_due_days": str(current["prepaid_due_days"]),
        "cancel_overdue_prepaid": _yes_no(current["cancel_overdue_prepaid"]),
        "bank_account": current.get("bank_account") or "",
    }


def calendar_form(current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The shipping calendar form filled with the shop's calendar (shipping's /api/shipping/calendar answer)."""
    if not current:
        return {}
    return {
        "time_zone": current["time_zone"],
        "cutoff": current["cutoff"],
        "closed_weekdays": [str(day) for day in current["closed_weekdays"]],
        "closures": "\n".join(current["closures"]),
        "warehouse_prefecture": current["warehouse_prefecture"],
    }


def campaign_lines(campaigns: list[Mapping[str, Any]]) -> str:
    """Campaigns one a line: `multiplier | starts_on | ends_on | sku, sku` (blank parts: none)."""
    return "\n".join(
        " | ".join([
            str(c["multiplier"]), c.get("starts_on") or "", c.get("ends_on") or "", ", ".join(c.get("skus") or []),
        ]).rstrip(" |")
        for c in campaigns
    )


def points_form(current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The points settings form filled with the shop's rules (points' /api/points/settings answer)."""
    if not current:
        return {}
    events = current.get("confirm_on_events")
    return {
        "rate_percent": str(current["rate_percent"]),
        "confirm_on": current["confirm_on"],
        "per_event": _yes_no(events is not None),
        "confirm_on_events": list(events or []),
        "allow_negative": _yes_no(current["allow_negative"]),
        "expiry_months": "" if current.get("expiry_months") is None else str(current["expiry_months"]),
        "campaigns": campaign_lines(current.get("campaigns") or []),
    }


def campaigns(text: str) -> list[PointsCampaign]:
    """One campaign a line: `2 | 2026-12-01 | 2026-12-31 | SKU-1, SKU-2` (dates and skus may be left blank)."""
    found, reasons = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split("|")] + ["", "", ""]
        multiplier, starts_on, ends_on, skus = parts[:4]
        try:
            found.append(PointsCampaign(
                multiplier=multiplier, starts_on=_day(starts_on), ends_on=_day(ends_on),
                skus=[s.strip() for s in skus.split(",") if s.strip()] or None,
            ))
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
            reasons.append(f"campaigns line {number}: {problems[:200]} (write multiplier | first day | last day | skus)")
        except ValueError as error:
            reasons.append(f"campaigns line {number}: {str(error)[:200]} (write multiplier | first day | last day | skus)")
    if reasons:
        raise FormError(reasons)
    return found


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def points_command(common: dict[str, Any], form: Mapping[str, Any]) -> SetPointsSettings:
    """The points settings form as SetPointsSettings (it replaces every rule, so the form shows them all)."""
    text = {name: str(form.get(name) or "").strip() for name in ("rate_percent", "confirm_on", "expiry_months", "campaigns")}
    events = form.getlist("confirm_on_events") if hasattr(form, "getlist") else []
    return SetPointsSettings(
        **common, rate_percent=text["rate_percent"] or 1, confirm_on=text["confirm_on"] or "either",
        confirm_on_events=list(events) if str(form.get("per_event") or "") == "yes" else None,
        allow_negative=str(form.get("allow_negative") or "") == "yes", expiry_months=text["expiry_months"] or None,
        campaigns=campaigns(text["campaigns"]),
    )
