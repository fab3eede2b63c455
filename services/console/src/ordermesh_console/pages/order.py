"""One order's page: everything every service knows of it, and the actions staff take, each answered by its service."""

import asyncio
from uuid import UUID

from ordermesh_servicekit.http_input import query_uuid
from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..domain.actions import ORDER_ACTIONS, FormError, Target, build_command
from ..domain.roles import Permission, allows
from .common import Refused, checked_form, console_of, redirect, render, require


def _order_id(request: Request) -> UUID:
    try:
        return UUID(request.path_params["order_id"])
    except ValueError:
        raise Refused(404, f"{request.path_params['order_id'][:64]!r} is not an order id") from None


async def _page(request: Request, session: store.Session, order_id: UUID, status: int = 200, **extra) -> Response:
    console = console_of(request)
    shown_id = query_uuid(request, "sent", required=False)
    order = await console.reader.order(order_id)
    if order is None:
        raise Refused(404, f"no order {order_id}")
    around, letters = await asyncio.gather(
        console.reader.order_around(order_id), console.kafka_views.pending_dead_letters()
    )
    async with console.pool.acquire() as conn:
        sent = await store.sent_for_order(conn, order_id)
        shown = await store.sent_command(conn, shown_id) if shown_id else None
    contents = order.get("contents") or {}
    balance = order["total"] - (order.get("paid") or 0)
    return render(
        request, "order.html", session, status=status, order=order, contents=contents, around=around, sent=sent,
        shown=shown, balance=balance,
        dead_letters=[letter for letter in letters if letter["order_id"] == str(order_id)] if isinstance(letters, list) else [],
        **extra,
    )


async def _with_merged_ids(request: Request, form, shop_id: str) -> dict:
    """The merge form with the orders to merge in given as shop order numbers turned into order ids (an unknown
    number stays as it is and is refused with its reason)."""
    parts = []
    for part in str(form.get("other_order_ids") or "").replace(",", " ").split()[:50]:
        try:
            parts.append(str(UUID(part)))
        except ValueError:
            found = await console_of(request).reader.order_ids_by_number(part, shop_id) if len(part) <= 64 else []
            parts.append(found[0] if len(found) == 1 else part)
    return {**dict(form), "other_order_ids": " ".join(parts)}


async def order_page(request: Request) -> Response:
    """GET /orders/{order_id}"""
    session = await require(request, Permission.VIEW)
    return await _page(request, session, _order_id(request))


async def order_action(request: Request) -> Response:
    """POST /orders/{order_id}/{action}: checks role and CSRF, sends the command, shows its reply on the order page."""
    session = await require(request, Permission.VIEW)
    order_id = _order_id(request)
    action = ORDER_ACTIONS.get(request.path_params["action"])
    if action is None:
        raise Refused(404, f"no action {request.path_params['action'][:40]!r}")
    form = await checked_form(request, session)
    if not allows(session.account.role, action.permission):
        raise Refused(403, f"{session.account.username} ({session.account.role.value}) may not {request.path_params['action']}")
    console = console_of(request)
    order = await console.reader.order(order_id)
    if order is None:
        raise Refused(404, f"no order {order_id}")
    shop_id = order["shop_id"]
    values = await _with_merged_ids(request, form, shop_id) if request.path_params["action"] == "merge" else form
    try:
        command = build_command(action, values, Target(order_id, shop_id, session.account.username))
    except FormError as error:
        return await _page(request, session, order_id, status=422, form_errors=error.reasons)
    await console.sender.send(action.topic, command)
    return redirect(f"/orders/{order_id}?sent={command.event_id}#reply")
