"""Shop settings (admins only): status groups and child statuses, rules (every validation error shown), shipping fees,
payment settings, the shipping calendar, points rules, mail settings and templates with a preview — each form filled
with the shop's current values, sent as the owning service's staff command and answered with its reply."""

import asyncio
from typing import Any
from urllib.parse import quote

from ordermesh_contracts import MailKind
from ordermesh_servicekit.http_input import query_text, query_uuid
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..adapters.services import ServiceUnavailable
from ..domain.actions import FormError
from ..domain.roles import Permission
from ..domain.settings_forms import KINDS, settings_command
from ..domain.settings_values import POINTS_EVENTS, calendar_form, payment_form, points_form
from .common import Refused, checked_form, console_of, redirect, render, require

WEEKDAYS = ("月", "火", "水", "木", "金", "土", "日")


async def _current(request: Request, shop_id: str) -> dict[str, Any]:
    """What the services have for the shop now: shipping fees (orders), mail settings (notify), and the payment
    settings, shipping calendar and points rules as the values of their forms."""
    if not shop_id:
        return {"fees": None, "mail": None, "payments_now": {}, "calendar_now": {}, "points_now": {}}
    reader = console_of(request).reader
    fees, mail, payments, calendar, points = await asyncio.gather(
        reader.get("orders", "/api/orders/shipping-fees", shop_id=shop_id),
        reader.get("notify", "/api/notify/settings", shop_id=shop_id),
        reader.get("payments", "/api/payments/settings", shop_id=shop_id),
        reader.get("shipping", "/api/shipping/calendar", shop_id=shop_id),
        reader.get("points", "/api/points/settings", shop_id=shop_id),
    )
    return {
        "fees": fees, "mail": mail, "payments_now": payment_form(payments), "calendar_now": calendar_form(calendar),
        "points_now": points_form(points),
    }


def _page(request: Request, session: store.Session, shop_id: str, current: dict[str, Any], status: int = 200,
          **extra: Any) -> Response:
    return render(
        request, "settings.html", session, status=status, shop_id=shop_id, mail_kinds=[k.value for k in MailKind],
        weekdays=WEEKDAYS, points_events=POINTS_EVENTS, **current, **{"shown": None, "form": {}, "submitted": None, **extra},
    )


async def settings_page(request: Request) -> Response:
    """GET /settings?shop_id&sent — the forms, the shop's current settings, and the reply to the last one sent (a
    mail preview shows the rendered mail)."""
    session = await require(request, Permission.ADMINISTER)
    shop_id = (query_text(request, "shop_id", max_length=64) or "").strip()
    sent = query_uuid(request, "sent", required=False)
    current = await _current(request, shop_id)
    shown = None
    if sent:
        async with console_of(request).pool.acquire() as conn:
            shown = await store.sent_command(conn, sent)
    return _page(request, session, shop_id, current, shown=shown)


async def _with_order_id(request: Request, form: FormData) -> dict[str, Any]:
    """The preview form with its `order` (a shop order number or an order id) as the order id the command needs."""
    values: dict[str, Any] = dict(form)
    order = str(form.get("order") or "").strip()
    shop_id = str(form.get("shop_id") or "").strip()
    if order and shop_id:
        found = await console_of(request).reader.get("orders", "/api/orders/by-number", external_order_no=order, shop_id=shop_id)
        orders = (found or {}).get("orders") or []
        values["order_id"] = str(orders[0]["order_id"]) if orders else order
    return values


async def save_settings(request: Request) -> Response:
    """POST /settings/{kind}: sends the command; the page shows the reply with every reason."""
    session = await require(request, Permission.ADMINISTER)
    form = await checked_form(request, session)
    kind = request.path_params["kind"]
    if kind not in KINDS:
        raise Refused(404, f"no settings {kind[:40]!r}")
    shop_id = str(form.get("shop_id") or "").strip()[:64]
    values = await _with_order_id(request, form) if kind == "mail_preview" else form
    try:
        topic, command = settings_command(kind, values, session.account.username)
    except FormError as error:
        try:
            current = await _current(request, shop_id)
        except ServiceUnavailable:
            current = await _current(request, "")
        submitted = {**dict(form), **{name: form.getlist(name) for name in ("closed_weekdays", "confirm_on_events")}}
        return _page(request, session, shop_id, current, status=422, form_errors=error.reasons, form=submitted,
                     submitted=kind)
    await console_of(request).sender.send(topic, command)
    return redirect(f"/settings?shop_id={quote(command.shop_id, safe='')}&sent={command.event_id}#reply")
