"""Bulk actions on the selected orders or on every order of the list's filter, with one result per order."""

import uuid

from starlette.requests import Request
from starlette.responses import Response

from ..domain import bulk
from ..domain.actions import FormError
from ..domain.roles import allows
from ..domain.roles import Permission
from .common import Refused, checked_form, console_of, render, require
from .orders import FILTERS, api_filters

PAGE = 1000


async def bulk_action(request: Request) -> Response:
    """POST /orders/bulk: action, value, scope (selected | filter), the selected orders or the filter's fields."""
    session = await require(request, Permission.VIEW)
    form = await checked_form(request, session)
    action = str(form.get("action") or "")
    permission = bulk.BULK_ACTIONS.get(action)
    if permission is None:
        raise Refused(400, f"no bulk action {action[:40]!r}")
    if not allows(session.account.role, permission):
        raise Refused(403, f"{session.account.username} ({session.account.role.value}) may not run {action}")
    console = console_of(request)
    try:
        if form.get("scope") == "filter":
            items = await _items_of_filter(request, {n: str(form.get(f"f_{n}") or "") for n in FILTERS})
        else:
            items = [bulk.parse_item(str(v)) for v in form.getlist("order")]
        sends = bulk.commands_for(action, form, items, session.account.username)
    except FormError as error:
        return render(request, "bulk.html", session, status=422, form_errors=error.reasons, rows=[], action=action)
    replies = await console.sender.send_many(sends, batch_id=uuid.uuid4())
    rows = bulk.results(items, sends, replies)
    return render(
        request, "bulk.html", session, rows=rows, action=action, succeeded=sum(r["ok"] for r in rows),
        failed=sum(not r["ok"] for r in rows),
    )


async def _items_of_filter(request: Request, filters: dict[str, str]) -> list[bulk.Item]:
    filters = api_filters(request, {k: v for k, v in filters.items() if v})
    items: list[bulk.Item] = []
    while len(items) <= bulk.MAX_ORDERS:
        answer = await console_of(request).reader.orders_page(filters, len(items), PAGE)
        items += [bulk.Item(uuid.UUID(o["order_id"]), o["shop_id"], o["external_order_no"]) for o in answer["orders"]]
        if len(answer["orders"]) < PAGE:
            break
    return items
