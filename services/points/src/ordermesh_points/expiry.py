"""Expiring a shop's old confirmed points, oldest first: by staff's ExpirePoints and by the service's daily schedule."""

from datetime import datetime
from uuid import NAMESPACE_URL, uuid5
from zoneinfo import ZoneInfo

import asyncpg
from ordermesh_contracts import ExpirePoints, PointsExpired, topics
from ordermesh_servicekit.consuming import UnitOfWork
from ordermesh_servicekit.outbox import write_outbox

from . import store
from .domain import ledger

SCHEDULER = "points:scheduled-expiry"


async def expire_shop(uow: UnitOfWork, command: ExpirePoints, months: int) -> dict[str, int]:
    """Expires the shop's confirmed points at least `months` old as of `command.as_of`: one entry and one
    PointsExpired per customer with points due. Asking again for the same day expires nothing more.
    Returns the points expired per customer."""
    expired_by_customer: dict[str, int] = {}
    for customer_id in await store.customers_with_credits(uow.conn, command.shop_id):
        await store.lock_customer(uow.conn, command.shop_id, customer_id)
        entries = await store.entries_of(uow.conn, command.shop_id, customer_id)
        expired = ledger.expire(entries, as_of=command.as_of, months=months)
        if not expired:
            continue
        await store.append_entries(
            uow.conn, command.shop_id, customer_id, expired, cause_id=command.event_id, at=command.occurred_at,
            reason=f"expired as of {command.as_of}", issued_by=command.issued_by,
        )
        points = sum(e.points for e in expired)
        uow.publish(
            topics.POINTS_EVENTS,
            PointsExpired(shop_id=command.shop_id, customer_id=customer_id, points=points, as_of=command.as_of, **command.caused()),
        )
        expired_by_customer[customer_id] = points
    return expired_by_customer


def scheduled_run(shop_id: str, now: datetime, timezone: ZoneInfo) -> ExpirePoints:
    """The expiry the schedule runs for a shop on the shop's day of `now`; its id is the same for the same shop and
    day, so every replica (and a rerun) books under one cause."""
    as_of = now.astimezone(timezone).date()
    run_id = uuid5(NAMESPACE_URL, f"ordermesh:points-expiry/{shop_id}/{as_of.isoformat()}")
    return ExpirePoints(event_id=run_id, correlation_id=run_id, occurred_at=now, shop_id=shop_id, issued_by=SCHEDULER, as_of=as_of)


async def run_scheduled_expiry(pool: asyncpg.Pool, now: datetime, timezone: ZoneInfo) -> dict[str, int]:
    """Expires due points of every shop with an expiry, once per shop and day (one transaction per shop; a shop
    whose day ran already, here or on another replica, is passed over). Returns points expired per shop run now."""
    async with pool.acquire() as conn:
        shops = await store.shops_with_expiry(conn)
    expired: dict[str, int] = {}
    for shop_id, months in shops:
        run = scheduled_run(shop_id, now, timezone)
        async with pool.acquire() as conn, conn.transaction():
            if not await store.claim_expiry_run(conn, shop_id, run.as_of, run.event_id):
                continue
            uow = UnitOfWork(conn)
            by_customer = await expire_shop(uow, run, months)
            await store.record_expiry_run(conn, shop_id, run.as_of, len(by_customer), sum(by_customer.values()))
            await write_outbox(conn, uow.outgoing)
        expired[shop_id] = sum(by_customer.values())
    return expired
