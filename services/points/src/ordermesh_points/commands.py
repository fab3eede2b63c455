"""Staff commands of the points service: grant, deduct, bulk confirm, expire, settings. Answered on ops.replies.v1."""

from ordermesh_contracts import (
    BulkConfirmPoints,
    DeductPoints,
    ExpirePoints,
    GrantPoints,
    ItemResult,
    PointsDeducted,
    PointsGranted,
    SetPointsSettings,
    topics,
)
from ordermesh_servicekit.commands import CommandRefused, accept
from ordermesh_servicekit.consuming import MessageContext

from . import store
from .domain import booking, ledger
from .domain.accrual import Campaign, ShopPointsSettings, validate_settings
from .domain.confirmation import chosen_events
from .expiry import expire_shop
from .handlers import save, start_booking

SERVICE = "points"


async def grant_points(command: GrantPoints, ctx: MessageContext) -> None:
    """Grants points by hand; refused with every reason for a bad amount, an unknown customer (unless staff say it is a
    new one, whose account the grant opens) or no reason."""
    async with ctx.unit_of_work() as uow:
        known = await store.lock_known_customer(uow.conn, command.shop_id, command.customer_id)
        current = await store.balance(uow.conn, command.shop_id, command.customer_id)
        entries, problems = ledger.grant(current, command.points, command.reason, customer_known=known or command.new_customer)
        if problems:
            raise CommandRefused(*problems)
        if not known:
            await store.lock_customer(uow.conn, command.shop_id, command.customer_id)
        await _adjust(uow, command, entries, current)
        uow.publish(topics.POINTS_EVENTS, PointsGranted(**_adjusted(command)))
        accept(uow, command, SERVICE, details={"balance": _balance_json(await store.balance(uow.conn, command.shop_id, command.customer_id))})


async def deduct_points(command: DeductPoints, ctx: MessageContext) -> None:
    """Deducts points by hand (how confirmed points are corrected); no more than available unless the shop allows it."""
    async with ctx.unit_of_work() as uow:
        known = await store.lock_known_customer(uow.conn, command.shop_id, command.customer_id)
        current = await store.balance(uow.conn, command.shop_id, command.customer_id)
        settings = await store.shop_settings(uow.conn, command.shop_id)
        entries, problems = ledger.deduct(
            current, command.points, command.reason, customer_known=known, allow_negative=settings.allow_negative
        )
        if problems:
            raise CommandRefused(*problems)
        await _adjust(uow, command, entries, current)
        uow.publish(topics.POINTS_EVENTS, PointsDeducted(**_adjusted(command)))
        accept(uow, command, SERVICE, details={"balance": _balance_json(await store.balance(uow.conn, command.shop_id, command.customer_id))})


async def _adjust(uow, command: GrantPoints | DeductPoints, entries, current: ledger.Balance) -> None:
    entries = tuple(ledger.Entry(e.kind, e.points, command.order_id) for e in entries)
    settled = tuple(ledger.Entry(e.kind, e.points, command.order_id) for e in ledger.settle_debt(current.after_all(entries)))
    await store.append_entries(
        uow.conn,
        command.shop_id,
        command.customer_id,
        entries + settled,
        cause_id=command.event_id,
        at=command.occurred_at,
        reason=command.reason,
        issued_by=command.issued_by,
    )


def _adjusted(command: GrantPoints | DeductPoints) -> dict:
    return {
        "shop_id": command.shop_id,
        "customer_id": command.customer_id,
        "points": command.points,
        "reason": command.reason,
        "issued_by": command.issued_by,
        "command_id": command.event_id,
        "order_id": command.order_id,
        **command.caused(),
    }


def _balance_json(balance: ledger.Balance) -> dict[str, int]:
    return {name: getattr(balance, name) for name in ("available", "provisional", "reserved", "used", "lifetime", "debt")}


async def bulk_confirm_points(command: BulkConfirmPoints, ctx: MessageContext) -> None:
    """Confirms many orders' points (listed, or paid in a period); one result per order, skips with the reason."""
    by_list, by_period = command.order_ids is not None, bool(command.paid_from or command.paid_until)
    if by_list == by_period:
        raise CommandRefused("give either order_ids or a paid period (paid_from and/or paid_until), not both or neither")
    results = []
    async with ctx.unit_of_work() as uow:
        order_ids = (
            sorted(set(command.order_ids))
            if by_list
            else await store.orders_paid_between(uow.conn, command.shop_id, command.paid_from, command.paid_until)
        )
        for order_id in order_ids:
            found = await store.lock_existing_order(uow.conn, order_id, command.shop_id)
            decision = ledger.confirm_by_staff(found.state if found else None)
            if decision is None or found is None:
                results.append(ItemResult(item=str(order_id), ok=False, reason="no points record for this order in this shop"))
                continue
            if decision.skipped:
                results.append(ItemResult(item=str(order_id), ok=False, reason=decision.skipped))
                continue
            await save(uow, found, booking.book(await start_booking(uow, found), decision, command))
            results.append(ItemResult(item=str(order_id), ok=True))
        confirmed = sum(result.ok for result in results)
        accept(uow, command, SERVICE, results=results, details={"confirmed": confirmed, "skipped": len(results) - confirmed})


async def expire_points(command: ExpirePoints, ctx: MessageContext) -> None:
    """Expires the shop's old confirmed points as of a day, oldest first, one entry per customer."""
    async with ctx.unit_of_work() as uow:
        settings = await store.shop_settings(uow.conn, command.shop_id)
        if settings.expiry_months is None:
            raise CommandRefused(f"shop {command.shop_id} has no points expiry (set expiry_months first)")
        expired = await expire_shop(uow, command, settings.expiry_months)
        results = [ItemResult(item=customer_id, ok=True, reason=f"{points} points expired") for customer_id, points in expired.items()]
        accept(uow, command, SERVICE, results=results, details={"customers": len(expired), "points": sum(expired.values())})


async def set_points_settings(command: SetPointsSettings, ctx: MessageContext) -> None:
    """Replaces the shop's points rules; refused with every reason when they can't work. A list of confirming payment
    events, when given, decides instead of `confirm_on` (an empty list: staff confirm by hand only)."""
    settings = ShopPointsSettings(
        rate_percent=command.rate_percent,
        campaigns=tuple(
            Campaign(c.multiplier, c.starts_on, c.ends_on, frozenset(c.skus) if c.skus is not None else None)
            for c in command.campaigns
        ),
        confirm_on=command.confirm_on,
        confirm_on_events=chosen_events(command.confirm_on_events),
        allow_negative=command.allow_negative,
        expiry_months=command.expiry_months,
    )
    if problems := validate_settings(settings):
        raise CommandRefused(*problems)
    async with ctx.unit_of_work() as uow:
        await store.save_shop_settings(uow.conn, command.shop_id, settings, command.issued_by)
        details = command.model_dump(mode="json", include={"rate_percent", "confirm_on", "allow_negative", "expiry_months"})
        events = settings.confirm_on_events
        accept(uow, command, SERVICE, details={**details, "confirm_on_events": list(events) if events is not None else None})
