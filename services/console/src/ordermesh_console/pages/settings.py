"""Shop settings (admins only): status groups and child statuses, rules (every validation error shown), shipping fees."""

from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..adapters.services import ServiceUnavailable
from ..domain.actions import FormError
from ..domain.roles import Permission
from ..domain.settings_forms import settings_command
from .common import Refused, checked_form, console_of, redirect, render, require

KINDS = ("statuses", "rules", "shipping_fees")


async def settings_page(request: Request) -> Response:
    """GET /settings?shop_id — the forms, the shop's current shipping fees, and the reply to the last one sent."""
    session = await require(request, Permission.ADMINISTER)
    console = console_of(request)
    shop_id = (request.query_params.get("shop_id") or "").strip()[:64]
    try:
        fees = await console.reader.get("orders", "/api/orders/shipping-fees", shop_id=shop_id) if shop_id else None
    except ServiceUnavailable as error:
        raise Refused(502, str(error)) from error
    shown = None
    if sent := request.query_params.get("sent"):
        try:
            async with console.pool.acquire() as conn:
                shown = await store.sent_command(conn, UUID(sent))
        except ValueError:
            shown = None
    return render(request, "settings.html", session, shop_id=shop_id, fees=fees, shown=shown, form={})


async def save_settings(request: Request) -> Response:
    """POST /settings/{kind}: sends the command; the page shows the reply with every reason."""
    session = await require(request, Permission.ADMINISTER)
    form = await checked_form(request, session)
    kind = request.path_params["kind"]
    if kind not in KINDS:
        raise Refused(404, f"no settings {kind[:40]!r}")
    try:
        topic, command = settings_command(kind, form, session.account.username)
    except FormError as error:
        return render(request, "settings.html", session, status=422, shop_id=str(form.get("shop_id") or ""), fees=None,
                      shown=None, form_errors=error.reasons, form=dict(form))
    await console_of(request).sender.send(topic, command)
    return redirect(f"/settings?shop_id={command.shop_id}&sent={command.event_id}#reply")
