"""Shop settings forms as the staff commands that set them: status groups, rules, shipping fees (orders); payment
settings (payments); the shipping calendar (shipping); points rules (points); mail settings, templates and previews (notify)."""

from collections.abc import Mapping
from datetime import date
from typing import Any
from uuid import UUID

from ordermesh_contracts import (
    Command,
    ConfigureStatuses,
    PreviewMail,
    SaveMailTemplate,
    SetPaymentSettings,
    SetRules,
    SetShippingFees,
    SetShopMailSettings,
    SetShopShipping,
    StatusGroup,
    topics,
)
from ordermesh_servicekit.http_input import HttpRefusal, parse_json_object
from pydantic import ValidationError

from .actions import FormError
from .settings_values import points_command


def _reasons(error: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in error.errors()]


def status_groups(text: str) -> list[StatusGroup]:
    """One group a line: `stage: name | child, child` (e.g. `review: 確認待ち | 電話確認, 住所確認`)."""
    groups, reasons = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        stage, _, rest = line.partition(":")
        name, _, children = rest.partition("|")
        try:
            groups.append(StatusGroup(
                stage=stage.strip(), name=name.strip(), children=[c.strip() for c in children.split(",") if c.strip()]
            ))
        except ValidationError as error:
            reasons += [f"line {number}: {r}" for r in _reasons(error)]
    if reasons:
        raise FormError(reasons)
    return groups


def prefecture_fees(text: str) -> dict[str, int]:
    """One prefecture a line: `北海道=1320`."""
    fees, reasons = {}, []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        prefecture, _, fee = line.partition("=")
        if not (fee.strip().isascii() and fee.strip().isdigit() and len(fee.strip()) <= 12) or not prefecture.strip():
            reasons.append(f"line {number}: write prefecture=fee, e.g. 北海道=1320")
            continue
        fees[prefecture.strip()] = int(fee.strip())
    if reasons:
        raise FormError(reasons)
    return fees


def closed_days(text: str) -> list[date]:
    """One day a line (or separated by commas/spaces): `2026-12-31`."""
    days, reasons = [], []
    for part in text.replace(",", " ").split():
        try:
            days.append(date.fromisoformat(part))
        except ValueError:
            reasons.append(f"closures: {part[:20]!r} is not a day (YYYY-MM-DD)")
    if reasons:
        raise FormError(reasons)
    return days


def _text(form: Mapping[str, Any], name: str) -> str:
    return str(form.get(name) or "").strip()


def _yes(form: Mapping[str, Any], name: str) -> bool:
    return _text(form, name) == "yes"


def _optional(form: Mapping[str, Any], name: str) -> str | None:
    return _text(form, name) or None


def _payments(common: dict[str, Any], form: Mapping[str, Any]) -> Command:
    return SetPaymentSettings(
        **common, capture_at_authorization=_yes(form, "capture_at_authorization"),
        prepaid_due_days=_text(form, "prepaid_due_days") or 7, authorization_valid_days=_text(form, "authorization_valid_days") or 7,
        card_gateway=_text(form, "card_gateway") or "sandbox", reauthorize_expiring=_yes(form, "reauthorize_expiring"),
        cancel_overdue_prepaid=_yes(form, "cancel_overdue_prepaid"), bank_account=_optional(form, "bank_account"),
    )


def _calendar(common: dict[str, Any], form: Mapping[str, Any]) -> Command:
    """Only what is filled in changes (the weekdays only when asked to): shipping keeps the rest."""
    weekdays = []
    for value in form.getlist("closed_weekdays") if hasattr(form, "getlist") else []:
        if not (value.isascii() and value.isdigit() and len(value) == 1):
            raise FormError([f"closed_weekdays: {value[:10]!r} is not a weekday number (Monday = 0)"])
        weekdays.append(int(value))
    closures = _text(form, "closures")
    return SetShopShipping(
        **common, time_zone=_optional(form, "time_zone"), cutoff=_optional(form, "cutoff"),
        closed_weekdays=weekdays if _yes(form, "change_weekdays") else None,
        closures=closed_days(closures) if closures else None, warehouse_prefecture=_optional(form, "warehouse_prefecture"),
    )


def _mail_settings(common: dict[str, Any], form: Mapping[str, Any]) -> Command:
    disabled = form.getlist("disabled_kinds") if hasattr(form, "getlist") else []
    return SetShopMailSettings(
        **common, language=_text(form, "language") or "ja", signature=str(form.get("signature") or ""),
        encoding=_text(form, "encoding") or "utf-8", disabled_kinds=disabled,
    )


def _mail_template(common: dict[str, Any], form: Mapping[str, Any]) -> Command:
    return SaveMailTemplate(
        **common, mail_kind=_text(form, "mail_kind"), device=_text(form, "device") or "any",
        subject=str(form.get("subject") or ""), text=str(form.get("text") or ""), html=str(form.get("html") or "") or None,
    )


def _mail_preview(common: dict[str, Any], form: Mapping[str, Any]) -> Command:
    try:
        order_id = UUID(_text(form, "order_id"))
    except ValueError:
        raise FormError(["order: give a shop order number or an order id of this shop"]) from None
    return PreviewMail(
        **common, order_id=order_id, mail_kind=_text(form, "mail_kind"), device=_optional(form, "device"),
    )


SETTINGS_COMMANDS = {
    "payments": (topics.PAYMENTS_COMMANDS, _payments),
    "calendar": (topics.SHIPPING_COMMANDS, _calendar),
    "points": (topics.POINTS_COMMANDS, points_command),
    "mail_settings": (topics.NOTIFY_COMMANDS, _mail_settings),
    "mail_template": (topics.NOTIFY_COMMANDS, _mail_template),
    "mail_preview": (topics.NOTIFY_COMMANDS, _mail_preview),
}
"""Settings forms of the other services: topic and builder."""

KINDS = ("statuses", "rules", "shipping_fees", *SETTINGS_COMMANDS)


def settings_command(kind: str, form: Mapping[str, Any], actor: str) -> tuple[str, Command]:
    """The command a settings form asks for; FormError with every reason when it can't be one."""
    common = {"shop_id": str(form.get("shop_id") or "").strip(), "issued_by": actor}
    try:
        if kind in SETTINGS_COMMANDS:
            topic, build = SETTINGS_COMMANDS[kind]
            return topic, build(common, form)
        if kind == "statuses":
            return topics.ORDERS_COMMANDS, ConfigureStatuses(**common, groups=status_groups(str(form.get("groups") or "")))
        if kind == "rules":
            try:
                rule_set = parse_json_object(str(form.get("rule_set") or "").encode())
            except HttpRefusal as refusal:
                raise FormError([f"rule_set: {refusal.reason}"]) from None
            return topics.ORDERS_COMMANDS, SetRules(**common, rule_set=rule_set)
        if kind == "shipping_fees":
            free_from = str(form.get("free_from") or "").strip()
            return topics.ORDERS_COMMANDS, SetShippingFees(
                **common, fee=str(form.get("fee") or "").strip(), free_from=free_from or None,
                remote_island_surcharge=str(form.get("remote_island_surcharge") or "0").strip() or 0,
                by_prefecture=prefecture_fees(str(form.get("by_prefecture") or "")),
            )
    except ValidationError as error:
        raise FormError(_reasons(error)) from error
    raise FormError([f"no settings {kind!r}"])
