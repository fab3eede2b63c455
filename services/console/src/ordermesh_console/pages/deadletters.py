"""Operations: dead letters — list, inspect, replay, discard — through the ops package's functions."""

from ordermesh_ops import deadletters
from ordermesh_servicekit.http_input import query_text, query_uuid
from starlette.requests import Request
from starlette.responses import Response

from ..domain.roles import Permission
from .common import Refused, checked_form, console_of, redirect, render, require


async def dead_letter_list(request: Request) -> Response:
    """GET /operations/dead-letters?topic&status — every dead letter, newest first, with its reason and decision."""
    session = await require(request, Permission.VIEW)
    topic = query_text(request, "topic", max_length=200)
    status = query_text(request, "status", max_length=16)
    if status not in (None, "pending", "replayed", "discarded"):
        raise Refused(400, "status must be pending, replayed or discarded")
    order_id = query_uuid(request, "order_id", required=False)
    try:
        letters = await deadletters.list_dead_letters(console_of(request).connection, topic=topic, status=status)
    except ValueError as error:
        raise Refused(400, str(error)) from error
    rows = [letter.summary() for letter in reversed(letters)]
    if order_id is not None:
        rows = [row for row in rows if row["order_id"] == str(order_id)]
    return render(request, "dead_letters.html", session, letters=rows, topic=topic or "", status_filter=status or "",
                  order_id=str(order_id or ""), depth=deadletters.depth_by_topic(letters))


async def dead_letter_page(request: Request) -> Response:
    """GET /operations/dead-letters/{id} — headers, reason, the redacted payload, the decision."""
    session = await require(request, Permission.VIEW)
    try:
        letter = await deadletters.find(console_of(request).connection, request.path_params["letter_id"])
    except LookupError as error:
        raise Refused(404, str(error)) from error
    return render(request, "dead_letter.html", session, letter=letter.detail())


async def dead_letter_action(request: Request) -> Response:
    """POST /operations/dead-letters/{id}/{replay|discard} (operator; a discard needs a reason)."""
    session = await require(request, Permission.OPERATE)
    form = await checked_form(request, session)
    action = request.path_params["action"]
    if action not in ("replay", "discard"):
        raise Refused(404, f"no action {action[:40]!r}")
    reason = str(form.get("reason") or "").strip()[:500]
    if action == "discard" and not reason:
        raise Refused(400, "a discard needs a reason")
    connection = console_of(request).connection
    try:
        letter = await deadletters.find(connection, request.path_params["letter_id"])
    except LookupError as error:
        raise Refused(404, str(error)) from error
    try:
        if action == "replay":
            await deadletters.replay(connection, [letter], by=session.account.username, reason=reason)
        else:
            await deadletters.discard(connection, [letter], by=session.account.username, reason=reason)
    except ValueError as error:
        raise Refused(400, str(error)) from error
    return redirect(f"/operations/dead-letters/{letter.id}?done={action}")
