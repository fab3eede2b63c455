"""SQL of the points service: the ledger, each order's points, customer accounts (the per-customer lock) and shop settings."""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from .domain.booking import Booked
from .domain.accrual import Campaign, EarningTerms, ShopPointsSettings
from .domain.ledger import Balance, Entry, Kind, OrderPoints

# --- customers ----------------------------------------------------------------------------------------


_BALANCES = "available, provisional, reserved, used, lifetime, debt"


async def lock_customer(conn: asyncpg.Connection, shop_id: str, customer_id: str) -> Balance:
    """Creates the customer's account if new and locks it (one customer's balance changes one transaction at a time);
    returns its balances as they are once locked. Every ledger entry booked moves them (migration 0005's trigger)."""
    # One statement: a SELECT ... FOR UPDATE after an INSERT ... DO NOTHING in the same statement would not see a row
    # another transaction committed while this one waited for it; the no-op update locks the row it finds.
    row = await conn.fetchrow(
        f"""
        INSERT INTO customer_accounts (shop_id, customer_id) VALUES ($1, $2)
        ON CONFLICT (shop_id, customer_id) DO UPDATE SET customer_id = EXCLUDED.customer_id
        RETURNING {_BALANCES}
        """,
        shop_id,
        customer_id,
    )
    return _balance(row)


async def lock_customers(conn: asyncpg.Connection, customers: list[tuple[str, str]]) -> dict[tuple[str, str], Balance]:
    """Locks the accounts these (shop, customer) pairs have, in one statement and in order (two transactions locking
    overlapping sets wait instead of deadlocking); their balances once locked, by pair. Creates none: a customer
    without an account is left out (`lock_customer` creates it when a message books for it)."""
    rows = await conn.fetch(
        f"""
        SELECT a.shop_id, a.customer_id, {_BALANCES} FROM customer_accounts a
        JOIN unnest($1::text[], $2::text[]) AS c(shop_id, customer_id) USING (shop_id, customer_id)
        ORDER BY a.shop_id, a.customer_id FOR UPDATE OF a
        """,
        [shop_id for shop_id, _ in customers],
        [customer_id for _, customer_id in customers],
    )
    return {
        (row["shop_id"], row["customer_id"]): Balance(**{name: int(row[name]) for name in _BALANCES.split(", ")}) for row in rows
    }


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


@dataclass(frozen=True)
class StoredOrder:
    """One order's row as a handler loads it (locked) and saves it back: its points state, its customer, what it keeps
    for later messages (the payment method, payments waiting to be told apart, an edit waiting for the accrual, the
    terms it earns by) and its shop's points rules."""

    state: OrderPoints
    shop_id: str
    customer_id: str | None
    payment_method: str | None
    payments_waiting: tuple[str, ...]
    pending_edit: str | None
    terms: EarningTerms | None
    settings: ShopPointsSettings


_ORDER_COLUMNS = """
    o.*, o.pending_edit::text AS pending_edit_json, s.shop_id IS NOT NULL AS has_settings, s.rate_percent AS s_rate_percent,
    s.campaigns AS s_campaigns, s.confirm_on AS s_confirm_on, s.allow_negative AS s_allow_negative,
    s.expiry_months AS s_expiry_months, s.confirm_on_events AS s_confirm_on_events
"""


def _stored_order(row: asyncpg.Record) -> StoredOrder:
    return StoredOrder(
        state=OrderPoints(
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
        ),
        shop_id=row["shop_id"],
        customer_id=row["customer_id"],
        payment_method=row["payment_method"],
        payments_waiting=tuple(row["payments_waiting"] or ()),
        pending_edit=row["pending_edit_json"],
        terms=(
            EarningTerms(row["ordered_on"], row["member_since"], row["rate_percent"], _campaigns_of(row["campaigns"]))
            if row["ordered_on"] is not None
            else None
        ),
        settings=_settings_of(row, prefix="s_") if row["has_settings"] else ShopPointsSettings(),
    )


async def lock_order(conn: asyncpg.Connection, order_id: UUID, shop_id: str) -> StoredOrder:
    """The order's row, locked, with its shop's points rules; created as awaiting accrual if the order is new (one
    statement: the upsert's no-op update is what locks a row that exists)."""
    row = await conn.fetchrow(
        f"""
        WITH o AS (
            INSERT INTO order_points (order_id, shop_id, status) VALUES ($1, $2, 'awaiting_accrual')
            ON CONFLICT (order_id) DO UPDATE SET order_id = EXCLUDED.order_id
            RETURNING *
        )
        SELECT {_ORDER_COLUMNS} FROM o LEFT JOIN shop_settings s ON s.shop_id = o.shop_id
        """,
        order_id,
        shop_id,
    )
    return _stored_order(row)


async def lock_existing_order(conn: asyncpg.Connection, order_id: UUID, shop_id: str) -> StoredOrder | None:
    """The shop's order's row, locked, with its shop's points rules; None if the service never heard of it."""
    row = await conn.fetchrow(
        f"""
        SELECT {_ORDER_COLUMNS} FROM order_points o LEFT JOIN shop_settings s ON s.shop_id = o.shop_id
        WHERE o.order_id = $1 AND o.shop_id = $2 FOR UPDATE OF o
        """,
        order_id,
        shop_id,
    )
    return _stored_order(row) if row else None


async def lock_orders(conn: asyncpg.Connection, order_ids: list[UUID]) -> dict[UUID, StoredOrder]:
    """The rows these orders have, locked in one statement and in order of id, with their shops' points rules, by id.
    Creates none: an order the service never heard of is left out (`lock_order` creates it)."""
    rows = await conn.fetch(
        f"""
        SELECT {_ORDER_COLUMNS} FROM order_points o LEFT JOIN shop_settings s ON s.shop_id = o.shop_id
        WHERE o.order_id = ANY($1::uuid[]) ORDER BY o.order_id FOR UPDATE OF o
        """,
        order_ids,
    )
    return {row["order_id"]: _stored_order(row) for row in rows}


async def save_order(conn: asyncpg.Connection, order: StoredOrder, entries: Sequence[Booked] = ()) -> None:
    """Stores the order's row (it was locked) and appends the ledger entries its message caused, in one statement;
    a kept edit stays while the order still waits for it. An entry its cause booked already is left out."""
    await conn.execute(
        """
        WITH saved AS (
            UPDATE order_points SET customer_id = COALESCE($2, customer_id), status = $3, points = $4,
                   confirm_requested = $5, reserved = $6, reservation = $7, edit_no = $8, pending_edit_no = $9,
                   pending_edit = CASE WHEN $9 = 0 THEN NULL ELSE pending_edit END,
                   paid_at = $10, payment_method = $11, payments_waiting = $12,
                   ordered_on = $13, member_since = $14, rate_percent = $15, campaigns = $16::jsonb
            WHERE order_id = $1
        )
        INSERT INTO ledger (shop_id, customer_id, order_id, kind, points, cause_id, at)
        SELECT $17, $2, e.order_id, e.kind, e.points, e.cause_id, e.at
        FROM unnest($18::uuid[], $19::text[], $20::bigint[], $21::uuid[], $22::timestamptz[]) WITH ORDINALITY
            AS e(order_id, kind, points, cause_id, at, n)
        ORDER BY e.n
        ON CONFLICT DO NOTHING
        """,
        order.state.order_id,
        order.customer_id,
        order.state.status,
        order.state.points,
        order.state.confirm_requested,
        order.state.reserved,
        order.state.reservation,
        order.state.edit_no,
        order.state.pending_edit_no,
        order.state.paid_at,
        order.payment_method,
        list(order.payments_waiting),
        order.terms.ordered_on if order.terms else None,
        order.terms.member_since if order.terms else None,
        order.terms.rate_percent if order.terms else None,
        json.dumps(_campaigns_json(order.terms.campaigns)) if order.terms else None,
        order.shop_id,
        [booked.item.order_id for booked in entries],
        [booked.item.kind.value for booked in entries],
        [booked.item.points for booked in entries],
        [booked.cause.event_id for booked in entries],
        [booked.cause.occurred_at for booked in entries],
    )


async def keep_pending_edit(conn: asyncpg.Connection, order_id: UUID, edit_no: int, edit_json: str) -> None:
    """Keeps an edit that came before the accrual, if it is the one the order now waits for (`pending_edit_no`)."""
    await conn.execute(
        "UPDATE order_points SET pending_edit = $3::jsonb WHERE order_id = $1 AND pending_edit_no = $2",
        order_id,
        edit_no,
        edit_json,
    )


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


async def balance(conn: asyncpg.Connection, shop_id: str, customer_id: str) -> Balance:
    """The customer's balances as kept on the account (all zero for a customer without one)."""
    row = await conn.fetchrow(f"SELECT {_BALANCES} FROM customer_accounts WHERE shop_id = $1 AND customer_id = $2", shop_id, customer_id)
    return _balance(row) if row is not None else Balance()


def _balance(row: asyncpg.Record) -> Balance:
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
    return _settings_of(row) if row is not None else ShopPointsSettings()


def _settings_of(row: asyncpg.Record, prefix: str = "") -> ShopPointsSettings:
    events = row[f"{prefix}confirm_on_events"]
    return ShopPointsSettings(
        rate_percent=row[f"{prefix}rate_percent"],
        campaigns=_campaigns_of(row[f"{prefix}campaigns"]),
        confirm_on=row[f"{prefix}confirm_on"],
        allow_negative=row[f"{prefix}allow_negative"],
        expiry_months=row[f"{prefix}expiry_months"],
        confirm_on_events=tuple(events) if events is not None else None,
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
