"""SQL of the points service: the ledger, each order's points, customer accounts (the per-customer lock) and shop settings."""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg
from ordermesh_servicekit.outbox import OutgoingMessage, outbox_rows
from ordermesh_servicekit.unit_of_work import InboxClaim

from .domain.booking import Booked
from .domain.accrual import Campaign, EarningTerms, ShopPointsSettings
from .domain.ledger import Balance, Entry, Kind, OrderPoints

# --- customers ----------------------------------------------------------------------------------------


_BALANCE_NAMES = ("available", "provisional", "reserved", "used", "lifetime", "debt")
_BALANCES = ", ".join(_BALANCE_NAMES)


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


class BatchMessage(NamedTuple):
    """What a batch's message has its preload lock and create: its order (created only where it `creates_order`,
    else locked if the service knows it) and the customer it names, if any (the account created only where it
    `opens_account`, else locked if it exists)."""

    message_id: UUID
    order_id: UUID
    shop_id: str
    creates_order: bool
    customer_id: str | None
    opens_account: bool


async def lock_orders_and_customers(
    conn: asyncpg.Connection, messages: Sequence[BatchMessage], claim: InboxClaim
) -> tuple[dict[UUID, StoredOrder], dict[tuple[str, str], Balance]]:
    """Writes a batch's inbox rows (`claim`, see `InboxClaim`), then locks the orders of the messages it claimed and
    then their customers' accounts, in one statement, each set in order (two transactions locking overlapping sets
    wait instead of deadlocking), and reads them as locked: the orders' rows with their shops' points rules by id, the
    accounts' balances by (shop, customer).

    Only the messages the claim wrote count: a message the inbox held, or repeated in the batch, locks and creates
    nothing (no handler runs for it). An order is created as awaiting accrual (as `lock_order` creates it) where one
    of them `creates_order`, with the shop of the first that does; else it is left out when the service never heard
    of it. An account likewise (as `lock_customer` creates it) where one `opens_account`; the customers of the orders
    read are locked too."""
    arguments = [
        [message.message_id for message in messages],
        [message.order_id for message in messages],
        [message.shop_id for message in messages],
        [message.message_id for message in messages if message.creates_order],
        [message.customer_id for message in messages],
        [message.message_id for message in messages if message.opens_account],
    ]
    claimed, claim_arguments = claim.rows(len(arguments) + 1)
    rows = await conn.fetch(
        f"""
        WITH {claimed}, w AS (
            SELECT m.*, m.message_id = ANY($4::uuid[]) AS creates, m.message_id = ANY($6::uuid[]) AS opens
            FROM unnest($1::uuid[], $2::uuid[], $3::text[], $5::text[])
                WITH ORDINALITY AS m(message_id, order_id, shop_id, customer_id, place)
            WHERE m.message_id IN (SELECT message_id FROM claim)
        ), o AS (
            INSERT INTO order_points (order_id, shop_id, status)
            SELECT DISTINCT ON (w.order_id) w.order_id, w.shop_id, 'awaiting_accrual' FROM w
            WHERE w.creates OR EXISTS (SELECT FROM order_points p WHERE p.order_id = w.order_id)
            ORDER BY w.order_id, w.creates DESC, w.place
            ON CONFLICT (order_id) DO UPDATE SET order_id = EXCLUDED.order_id
            RETURNING *
        ), locked AS (
            INSERT INTO customer_accounts AS a (shop_id, customer_id)
            SELECT c.shop_id, c.customer_id FROM (
                SELECT n.shop_id, n.customer_id, bool_or(n.opens) AS opens FROM (
                    SELECT w.shop_id, w.customer_id, w.opens FROM w WHERE w.customer_id IS NOT NULL
                    UNION ALL SELECT o.shop_id, o.customer_id, false FROM o WHERE o.customer_id IS NOT NULL
                ) AS n GROUP BY n.shop_id, n.customer_id
            ) AS c
            WHERE c.opens
               OR EXISTS (SELECT FROM customer_accounts k WHERE k.shop_id = c.shop_id AND k.customer_id = c.customer_id)
            ORDER BY c.shop_id, c.customer_id
            ON CONFLICT (shop_id, customer_id) DO UPDATE SET customer_id = EXCLUDED.customer_id
            RETURNING a.shop_id, a.customer_id, {_BALANCES}
        ), accounts AS (
            SELECT array_agg(shop_id) AS a_shop_ids, array_agg(customer_id) AS a_customer_ids,
                   {", ".join(f"array_agg({name}) AS a_{name}" for name in _BALANCE_NAMES)}
            FROM locked
        )
        SELECT claimed.*, accounts.*, {_ORDER_COLUMNS}
        FROM claimed LEFT JOIN (accounts LEFT JOIN (o LEFT JOIN shop_settings s ON s.shop_id = o.shop_id) ON true) ON true
        """,
        *arguments,
        *claim_arguments,
    )
    first = rows[0]
    balances = {
        (shop_id, customer_id): Balance(**{name: int(first[f"a_{name}"][n]) for name in _BALANCE_NAMES})
        for n, (shop_id, customer_id) in enumerate(zip(first["a_shop_ids"] or (), first["a_customer_ids"] or ()))
    }
    return {row["order_id"]: _stored_order(row) for row in claim.read(rows, "order_id")}, balances


def _iso(moment: date | datetime | None) -> str | None:
    # dates and times go as text: an array of them costs asyncpg a type lookup on each new connection
    return moment.isoformat() if moment is not None else None


@dataclass(frozen=True)
class OrderSave:
    """What one message keeps of an order: its row as the message leaves it and the ledger entries it booked (in order,
    for the order's customer)."""

    order: StoredOrder
    entries: Sequence[Booked] = ()


async def save_order(conn: asyncpg.Connection, order: StoredOrder, entries: Sequence[Booked] = ()) -> None:
    """Stores the order's row (it was locked) and appends the ledger entries its message caused, in one statement."""
    await save_orders(conn, [OrderSave(order, entries)])


async def save_orders(conn: asyncpg.Connection, saves: Sequence[OrderSave], publish: Sequence[OutgoingMessage] = ()) -> bool:
    """Stores the rows of the saved orders (each locked; the last save of an order is its row) and appends every save's
    ledger entries in the order given, with the outbox rows `publish`, in one statement. An entry its cause booked
    already is left out; the order's kept edit is `pending_edit` (written as given). False, and nothing written, when
    there is no save."""
    if not saves:
        return False
    rows = list({save.order.state.order_id: save.order for save in saves}.values())
    entries = [(save.order, booked) for save in saves for booked in save.entries]
    arguments = [
        [order.state.order_id for order in rows],
        [order.customer_id for order in rows],
        [order.state.status for order in rows],
        [order.state.points for order in rows],
        [str(order.state.confirm_requested) for order in rows],
        [order.state.reserved for order in rows],
        [order.state.reservation for order in rows],
        [order.state.edit_no for order in rows],
        [order.state.pending_edit_no for order in rows],
        [order.pending_edit for order in rows],
        [_iso(order.state.paid_at) for order in rows],
        [order.payment_method for order in rows],
        [json.dumps(list(order.payments_waiting)) for order in rows],
        [_iso(order.terms.ordered_on) if order.terms else None for order in rows],
        [_iso(order.terms.member_since) if order.terms else None for order in rows],
        [order.terms.rate_percent if order.terms else None for order in rows],
        [json.dumps(_campaigns_json(order.terms.campaigns)) if order.terms else None for order in rows],
        [order.shop_id for order, _ in entries],
        [order.customer_id for order, _ in entries],
        [booked.item.order_id for _, booked in entries],
        [booked.item.kind.value for _, booked in entries],
        [booked.item.points for _, booked in entries],
        [booked.cause.event_id for _, booked in entries],
        [booked.cause.occurred_at.isoformat() for _, booked in entries],
    ]
    published, published_args = outbox_rows(len(arguments) + 1, publish, "true") if publish else ("", [])
    # The ids as an index condition of order_points too: joined only to unnest's rows, whose count a generic plan does
    # not know, the update seq-scanned order_points.
    await conn.execute(
        """
        WITH saved AS (
            UPDATE order_points o SET customer_id = COALESCE(s.customer_id, o.customer_id), status = s.status,
                   points = s.points, confirm_requested = s.confirm_requested::boolean, reserved = s.reserved,
                   reservation = s.reservation, edit_no = s.edit_no, pending_edit_no = s.pending_edit_no,
                   pending_edit = s.pending_edit::jsonb, paid_at = s.paid_at::timestamptz, payment_method = s.payment_method,
                   payments_waiting = ARRAY(SELECT jsonb_array_elements_text(s.payments_waiting::jsonb)),
                   ordered_on = s.ordered_on::date, member_since = s.member_since::date, rate_percent = s.rate_percent,
                   campaigns = s.campaigns::jsonb
            FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::text[],
                        $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
                        $15::text[], $16::bigint[], $17::text[])
                AS s(order_id, customer_id, status, points, confirm_requested, reserved, reservation, edit_no,
                     pending_edit_no, pending_edit, paid_at, payment_method, payments_waiting, ordered_on, member_since,
                     rate_percent, campaigns)
            WHERE o.order_id = s.order_id AND o.order_id = ANY($1::uuid[])
        ), entries AS (
            INSERT INTO ledger (shop_id, customer_id, order_id, kind, points, cause_id, at)
            SELECT e.shop_id, e.customer_id, e.order_id, e.kind, e.points, e.cause_id, e.at::timestamptz
            FROM unnest($18::text[], $19::text[], $20::uuid[], $21::text[], $22::bigint[], $23::uuid[], $24::text[])
                WITH ORDINALITY AS e(shop_id, customer_id, order_id, kind, points, cause_id, at, n)
            ORDER BY e.n
            ON CONFLICT DO NOTHING
        )"""
        + (f", {published}" if published else "")
        + """
        SELECT
        """,
        *arguments,
        *published_args,
    )
    return True


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
