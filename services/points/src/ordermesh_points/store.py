"""SQL of the points service: the ledger, each order's points, customer accounts (the per-customer lock) and shop settings."""

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from .domain.accrual import Campaign, EarningTerms, ShopPointsSettings
from .domain.ledger import Balance, Entry, Kind, OrderPoints

# --- customers ----------------------------------------------------------------------------------------


async def lock_customer(conn: asyncpg.Connection, shop_id: str, customer_id: str) -> None:
    """Creates the customer's account if new and locks it: one customer's balance changes one transaction at a time."""
    await conn.execute(
        "INSERT INTO customer_accounts (shop_id, customer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", shop_id, customer_id
    )
    await conn.execute(
        "SELECT 1 FROM customer_accounts WHERE shop_id = $1 AND customer_id = $2 FOR UPDATE", shop_id, customer_id
    )


async def lock_known_customer(conn: asyncpg.Connection, shop_id: str, customer_id: str) -> bool:
    """Locks the customer's account if the shop has one; False for an unknown customer."""
    return bool(
        await conn.fetchval(
            "SELECT true FROM customer_accounts WHERE shop_id = $1 AND customer_id = $2 FOR UPDATE", shop_id, customer_id
        )
    )


async def customers_with_credits(conn: asyncpg.Connection, shop_id: str) -> list[str]:
    """Customers of the shop who were ever given points (the candidates for expiry)."""
    rows = await conn.fetch(
        "SELECT DISTINCT customer_id FROM ledger WHERE shop_id = $1 AND kind IN ('confirmed', 'granted') ORDER BY 1", shop_id
    )
    return [row["customer_id"] for row in rows]


async def shops_with_expiry(conn: asyncpg.Connection) -> list[tuple[str, int]]:
    """Shops whose confirmed points expire, with their expiry in months."""
    rows = await conn.fetch("SELECT shop_id, expiry_months FROM shop_settings WHERE expiry_months IS NOT NULL ORDER BY shop_id")
    return [(row["shop_id"], row["expiry_months"]) for row in rows]


async def claim_expiry_run(conn: asyncpg.Connection, shop_id: str, as_of: date, run_id: UUID) -> bool:
    """Claims the shop's scheduled expiry of `as_of` for this transaction; False when it ran (or is running) already.

    A second claimant waits on the key until the first commits (then gets False) or rolls back (then gets it)."""
    return bool(
        await conn.fetchval(
            "INSERT INTO expiry_runs (shop_id, as_of, run_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
            shop_id,
            as_of,
            run_id,
        )
    )


async def record_expiry_run(conn: asyncpg.Connection, shop_id: str, as_of: date, customers: int, points: int) -> None:
    """Notes what the shop's scheduled expiry of `as_of` expired."""
    await conn.execute(
        "UPDATE expiry_runs SET customers = $3, points = $4 WHERE shop_id = $1 AND as_of = $2", shop_id, as_of, customers, points
    )



async def expiry_runs(conn: asyncpg.Connection, shop_id: str, limit: int = 60) -> list[dict[str, Any]]:
    """The shop's scheduled expiry runs, newest first."""
    rows = await conn.fetch(
        "SELECT as_of, ran_at, customers, points, run_id FROM expiry_runs WHERE shop_id = $1 ORDER BY as_of DESC LIMIT $2",
        shop_id,
        limit,
    )
    return [dict(row) for row in rows]

# --- orders ---------------------------------------------------------------------------------------------


def _order_state(row: asyncpg.Record) -> OrderPoints:
    return OrderPoints(
        order_id=row["order_id"],
        status=row["status"],
        points=row["points"] or 0,
        confirm_requested=row["confirm_requested"],
        paid=row["paid_at"] is not None,
        reserved=row["reserved"],
        reservation=row["reservation"],
        paid_at=row["paid_at"],
        edit_no=row["edit_no"],
        pending_edit_no=row["pending_edit_no"],
    )


async def lock_order(conn: asyncpg.Connection, order_id: UUID, shop_id: str) -> tuple[OrderPoints, str | None]:
    """The order's points state and customer, locked (created as awaiting accrual if the order is new)."""
    await conn.execute(
        "INSERT INTO order_points (order_id, shop_id, status) VALUES ($1, $2, 'awaiting_accrual') ON CONFLICT DO NOTHING",
        order_id,
        shop_id,
    )
    row = await conn.fetchrow("SELECT * FROM order_points WHERE order_id = $1 FOR UPDATE", order_id)
    return _order_state(row), row["customer_id"]


async def lock_existing_order(conn: asyncpg.Connection, order_id: UUID, shop_id: str) -> tuple[OrderPoints, str | None] | None:
    """The shop's order's points state and customer, locked; None if the service never heard of it."""
    row = await conn.fetchrow(
        "SELECT * FROM order_points WHERE order_id = $1 AND shop_id = $2 FOR UPDATE", order_id, shop_id
    )
    return (_order_state(row), row["customer_id"]) if row else None


async def save_order(conn: asyncpg.Connection, order: OrderPoints, customer_id: str | None) -> None:
    """Stores the order's points state (its row exists: it was locked)."""
    await conn.execute(
        """
        UPDATE order_points SET customer_id = COALESCE($2, customer_id), status = $3, points = $4,
               confirm_requested = $5, reserved = $6, reservation = $7, edit_no = $8, pending_edit_no = $9,
               pending_edit = CASE WHEN $9 = 0 THEN NULL ELSE pending_edit END
        WHERE order_id = $1
        """,
        order.order_id,
        customer_id,
        order.status,
        order.points,
        order.confirm_requested,
        order.reserved,
        order.reservation,
        order.edit_no,
        order.pending_edit_no,
    )


async def keep_terms(conn: asyncpg.Connection, order_id: UUID, terms: EarningTerms) -> None:
    """Keeps what the order earned by at acceptance; the first acceptance's terms stay."""
    await conn.execute(
        """
        UPDATE order_points SET ordered_on = $2, member_since = $3, rate_percent = $4, campaigns = $5::jsonb
        WHERE order_id = $1 AND ordered_on IS NULL
        """,
        order_id,
        terms.ordered_on,
        terms.member_since,
        terms.rate_percent,
        json.dumps(_campaigns_json(terms.campaigns)),
    )


async def earning_terms(conn: asyncpg.Connection, order_id: UUID) -> EarningTerms | None:
    """What the order earned by at acceptance; None before the acceptance (or for orders accepted before they were kept)."""
    row = await conn.fetchrow(
        "SELECT ordered_on, member_since, rate_percent, campaigns FROM order_points WHERE order_id = $1", order_id
    )
    if row is None or row["ordered_on"] is None:
        return None
    return EarningTerms(row["ordered_on"], row["member_since"], row["rate_percent"], _campaigns_of(row["campaigns"]))


async def keep_pending_edit(conn: asyncpg.Connection, order_id: UUID, edit_no: int, edit_json: str) -> None:
    """Keeps an edit that came before the accrual, if it is the one the order now waits for (`pending_edit_no`)."""
    await conn.execute(
        "UPDATE order_points SET pending_edit = $3::jsonb WHERE order_id = $1 AND pending_edit_no = $2",
        order_id,
        edit_no,
        edit_json,
    )


async def pending_edit(conn: asyncpg.Connection, order_id: UUID) -> str | None:
    """The edit (as JSON) waiting for the order's accrual, if any."""
    return await conn.fetchval("SELECT pending_edit::text FROM order_points WHERE order_id = $1", order_id)


async def mark_paid(conn: asyncpg.Connection, order_id: UUID, paid_at: datetime) -> None:
    """Notes when the order's payment was confirmed (the first time)."""
    await conn.execute("UPDATE order_points SET paid_at = COALESCE(paid_at, $2) WHERE order_id = $1", order_id, paid_at)


async def keep_payment_method(conn: asyncpg.Connection, order_id: UUID, method: str, *, edited: bool = False) -> None:
    """Keeps how the order is paid: an acceptance names it unless an edit (always the later truth) named it first."""
    await conn.execute(
        "UPDATE order_points SET payment_method = CASE WHEN $3 THEN $2 ELSE COALESCE(payment_method, $2) END WHERE order_id = $1",
        order_id,
        method,
        edited,
    )


async def payment_method(conn: asyncpg.Connection, order_id: UUID) -> str | None:
    """How the order is paid; None before its acceptance (or for orders accepted before it was kept)."""
    return await conn.fetchval("SELECT payment_method FROM order_points WHERE order_id = $1", order_id)


async def keep_waiting_payment(conn: asyncpg.Connection, order_id: UUID, token: str) -> None:
    """Keeps a payment that can't be told apart until the order's acceptance names its payment method (each once)."""
    await conn.execute(
        """
        UPDATE order_points SET payments_waiting = array_append(payments_waiting, $2)
        WHERE order_id = $1 AND NOT ($2 = ANY(payments_waiting))
        """,
        order_id,
        token,
    )


async def take_waiting_payments(conn: asyncpg.Connection, order_id: UUID) -> list[str]:
    """The payments that waited for the order's acceptance, removed from it (its row is locked: the caller decides them)."""
    waiting = await conn.fetchval("SELECT payments_waiting FROM order_points WHERE order_id = $1", order_id)
    if waiting:
        await conn.execute("UPDATE order_points SET payments_waiting = '{}' WHERE order_id = $1", order_id)
    return list(waiting or [])


async def orders_paid_between(conn: asyncpg.Connection, shop_id: str, start: datetime | None, end: datetime | None) -> list[UUID]:
    """The shop's orders whose payment was confirmed in [start, end)."""
    rows = await conn.fetch(
        """
        SELECT order_id FROM order_points
        WHERE shop_id = $1 AND paid_at IS NOT NULL AND ($2::timestamptz IS NULL OR paid_at >= $2)
          AND ($3::timestamptz IS NULL OR paid_at < $3)
        ORDER BY paid_at, order_id
        """,
        shop_id,
        start,
        end,
    )
    return [row["order_id"] for row in rows]


# --- the ledger -----------------------------------------------------------------------------------------


async def append_entries(
    conn: asyncpg.Connection,
    shop_id: str,
    customer_id: str,
    entries: Iterable[Entry],
    *,
    cause_id: UUID,
    at: datetime,
    reason: str | None = None,
    issued_by: str | None = None,
) -> None:
    """Appends entries caused by `cause_id`; the same cause, kind, customer and order is booked once."""
    await conn.executemany(
        """
        INSERT INTO ledger (shop_id, customer_id, order_id, kind, points, cause_id, at, reason, issued_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING
        """,
        [
            (shop_id, customer_id, e.order_id, e.kind.value, e.points, cause_id, at, reason, issued_by)
            for e in entries
        ],
    )


async def entries_of(conn: asyncpg.Connection, shop_id: str, customer_id: str) -> list[Entry]:
    """The customer's ledger as domain entries, oldest first (0-point rows of the first version left out)."""
    rows = await conn.fetch(
        """
        SELECT kind, points, order_id, (at AT TIME ZONE 'UTC')::date AS on_day FROM ledger
        WHERE shop_id = $1 AND customer_id = $2 AND points > 0 ORDER BY entry_id
        """,
        shop_id,
        customer_id,
    )
    return [Entry(Kind(r["kind"]), r["points"], r["order_id"], r["on_day"]) for r in rows]


_BALANCE_SQL = """
SELECT
  COALESCE(SUM(CASE kind WHEN 'confirmed' THEN points WHEN 'granted' THEN points WHEN 'released' THEN points
                         WHEN 'reserved' THEN -points WHEN 'deducted' THEN -points WHEN 'expired' THEN -points
                         WHEN 'debt_settled' THEN -points ELSE 0 END), 0) AS available,
  COALESCE(SUM(CASE kind WHEN 'accrued' THEN points WHEN 'confirmed' THEN -points WHEN 'reversed' THEN -points
                         ELSE 0 END), 0) AS provisional,
  COALESCE(SUM(CASE kind WHEN 'reserved' THEN points WHEN 'released' THEN -points WHEN 'committed' THEN -points
                         ELSE 0 END), 0) AS reserved,
  COALESCE(SUM(CASE kind WHEN 'committed' THEN points ELSE 0 END), 0) AS used,
  COALESCE(SUM(CASE kind WHEN 'confirmed' THEN points WHEN 'granted' THEN points ELSE 0 END), 0) AS lifetime,
  COALESCE(SUM(CASE kind WHEN 'debt' THEN points WHEN 'debt_settled' THEN -points ELSE 0 END), 0) AS debt
FROM ledger WHERE shop_id = $1 AND customer_id = $2
"""


async def balance(conn: asyncpg.Connection, shop_id: str, customer_id: str) -> Balance:
    """The customer's balances, added up in SQL from the ledger."""
    row = await conn.fetchrow(_BALANCE_SQL, shop_id, customer_id)
    return Balance(**{name: int(row[name]) for name in row.keys()})


async def ledger_rows(conn: asyncpg.Connection, shop_id: str, customer_id: str) -> list[dict[str, Any]]:
    """The customer's ledger for staff, oldest first."""
    rows = await conn.fetch(
        """
        SELECT entry_id, at, kind, points, order_id, cause_id, reason, issued_by FROM ledger
        WHERE shop_id = $1 AND customer_id = $2 ORDER BY entry_id
        """,
        shop_id,
        customer_id,
    )
    return [dict(row) for row in rows]


async def order_row(conn: asyncpg.Connection, order_id: UUID) -> dict[str, Any] | None:
    """An order's points for staff, with its ledger entries."""
    row = await conn.fetchrow("SELECT * FROM order_points WHERE order_id = $1", order_id)
    if row is None:
        return None
    entries = await conn.fetch(
        "SELECT entry_id, at, kind, points, cause_id FROM ledger WHERE order_id = $1 ORDER BY entry_id", order_id
    )
    return {**dict(row), "confirmed": row["status"] == "confirmed", "entries": [dict(e) for e in entries]}


# --- shop settings --------------------------------------------------------------------------------------


async def shop_settings(conn: asyncpg.Connection, shop_id: str) -> ShopPointsSettings:
    """The shop's points rules, or the defaults when it has none."""
    row = await conn.fetchrow("SELECT * FROM shop_settings WHERE shop_id = $1", shop_id)
    if row is None:
        return ShopPointsSettings()
    return ShopPointsSettings(
        rate_percent=row["rate_percent"],
        campaigns=_campaigns_of(row["campaigns"]),
        confirm_on=row["confirm_on"],
        allow_negative=row["allow_negative"],
        expiry_months=row["expiry_months"],
        confirm_on_events=tuple(row["confirm_on_events"]) if row["confirm_on_events"] is not None else None,
    )


async def save_shop_settings(conn: asyncpg.Connection, shop_id: str, settings: ShopPointsSettings, updated_by: str) -> None:
    """Replaces the shop's points rules."""
    campaigns = _campaigns_json(settings.campaigns)
    await conn.execute(
        """
        INSERT INTO shop_settings
            (shop_id, rate_percent, campaigns, confirm_on, allow_negative, expiry_months, updated_by, confirm_on_events)
        VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8)
        ON CONFLICT (shop_id) DO UPDATE SET rate_percent = $2, campaigns = $3::jsonb, confirm_on = $4,
            allow_negative = $5, expiry_months = $6, updated_by = $7, confirm_on_events = $8, updated_at = now()
        """,
        shop_id,
        settings.rate_percent,
        json.dumps(campaigns),
        settings.confirm_on,
        settings.allow_negative,
        settings.expiry_months,
        updated_by,
        list(settings.confirm_on_events) if settings.confirm_on_events is not None else None,
    )


def _campaigns_json(campaigns: Iterable[Campaign]) -> list[dict[str, Any]]:
    return [
        {
            "multiplier": c.multiplier,
            "starts_on": c.starts_on.isoformat() if c.starts_on else None,
            "ends_on": c.ends_on.isoformat() if c.ends_on else None,
            "skus": sorted(c.skus) if c.skus is not None else None,
        }
        for c in campaigns
    ]


def _campaigns_of(stored: str) -> tuple[Campaign, ...]:
    return tuple(
        Campaign(
            multiplier=c["multiplier"],
            starts_on=date.fromisoformat(c["starts_on"]) if c.get("starts_on") else None,
            ends_on=date.fromisoformat(c["ends_on"]) if c.get("ends_on") else None,
            skus=frozenset(c["skus"]) if c.get("skus") is not None else None,
        )
        for c in json.loads(stored)
    )
