"""SQL of the payments service: payment state per order and the ledger of gateway calls."""

from datetime import date
from uuid import UUID

import asyncpg


async def create_payment(
    conn: asyncpg.Connection,
    *,
    order_id: UUID,
    shop_id: str,
    method: str,
    currency: str,
    amount: int,
    status: str,
    reference: str | None = None,
    due_date: date | None = None,
    cancelled: bool = False,
    customer_id: str | None = None,
    card_token: str | None = None,
    gateway: str | None = None,
    correlation_id: UUID | None = None,
    traceparent: str | None = None,
) -> None:
    """Creates the order's payment row (kept as it is if it exists); `cancelled` for an order cancelled already,
    `gateway` the card gateway it starts on, `correlation_id` and `traceparent` the order's, for a provider's callbacks."""
    await conn.execute(
        """
        INSERT INTO payments (order_id, shop_id, method, currency, amount, status, reference, due_date, cancelled_at,
            customer_id, card_token, gateway, correlation_id, traceparent)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN now() END, $10, $11, $12, $13, $14)
        ON CONFLICT (order_id) DO NOTHING
        """,
        order_id,
        shop_id,
        method,
        currency,
        amount,
        status,
        reference,
        due_date,
        cancelled,
        customer_id,
        card_token,
        gateway,
        correlation_id,
        traceparent,
    )


async def record_intent(
    conn: asyncpg.Connection, *, key: str, order_id: UUID, operation: str, amount: int, note: str | None = None
) -> None:
    """Writes a gateway call before it is made (kept as it is if it exists)."""
    await conn.execute(
        """
        INSERT INTO gateway_calls (idempotency_key, order_id, operation, amount, note)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING
        """,
        key,
        order_id,
        operation,
        amount,
        note,
    )


async def record_settled_without_gateway(
    conn: asyncpg.Connection, *, key: str, order_id: UUID, amount: int, reference: str, note: str
) -> bool:
    """Writes a capture no gateway was asked for (paid on the platform, or nothing to pay) as done at once; False if
    it was written before."""
    return bool(
        await conn.fetchval(
            """
            INSERT INTO gateway_calls (idempotency_key, order_id, operation, amount, status, reference, note, completed_at)
            VALUES ($1, $2, 'capture', $3, 'succeeded', $4, $5, now()) ON CONFLICT DO NOTHING RETURNING true
            """,
            key,
            order_id,
            amount,
            reference,
            note,
        )
    )


async def record_result(
    conn: asyncpg.Connection, *, key: str, approved: bool, reference: str | None, reason: str | None
) -> None:
    """Writes the gateway's answer to a call."""
    await conn.execute(
        """
        UPDATE gateway_calls SET status = $2, reference = $3, reason = $4, completed_at = now()
        WHERE idempotency_key = $1
        """,
        key,
        "succeeded" if approved else "failed",
        reference,
        reason,
    )


async def lock_payment(conn: asyncpg.Connection, order_id: UUID) -> asyncpg.Record | None:
    """The order's payment row, locked for this transaction."""
    return await conn.fetchrow("SELECT * FROM payments WHERE order_id = $1 FOR UPDATE", order_id)


async def set_authorized(conn: asyncpg.Connection, order_id: UUID, authorization_id: str, amount: int) -> None:
    """Marks the payment authorized."""
    await conn.execute(
        """
        UPDATE payments SET status = 'authorized', authorization_id = $2, authorized_amount = $3,
            authorized_at = now(), updated_at = now()
        WHERE order_id = $1
        """,
        order_id,
        authorization_id,
        amount,
    )


async def set_status(conn: asyncpg.Connection, order_id: UUID, status: str) -> None:
    """Sets the payment's status."""
    await conn.execute("UPDATE payments SET status = $2, updated_at = now() WHERE order_id = $1", order_id, status)


async def set_captured(conn: asyncpg.Connection, order_id: UUID, amount: int, capture_id: str | None) -> None:
    """Marks the payment captured."""
    await conn.execute(
        """
        UPDATE payments SET status = 'captured', captured_amount = $2, capture_id = $3, updated_at = now()
        WHERE order_id = $1
        """,
        order_id,
        amount,
        capture_id,
    )


async def add_refunded(conn: asyncpg.Connection, order_id: UUID, amount: int) -> int:
    """Adds a refund to the payment; returns everything refunded so far."""
    return await conn.fetchval(
        """
        UPDATE payments SET refunded_amount = refunded_amount + $2,
            status = CASE WHEN refunded_amount + $2 >= captured_amount THEN 'refunded' ELSE status END,
            updated_at = now()
        WHERE order_id = $1 RETURNING refunded_amount
        """,
        order_id,
        amount,
    )


SETTINGS = ("capture_at_authorization", "prepaid_due_days", "authorization_valid_days", "card_gateway",
            "reauthorize_expiring", "cancel_overdue_prepaid", "bank_account")
DEFAULT_SETTINGS = {
    "capture_at_authorization": False, "prepaid_due_days": 7, "authorization_valid_days": 7, "card_gateway": "sandbox",
    "reauthorize_expiring": False, "cancel_overdue_prepaid": False, "bank_account": None,
}


async def payment_settings(conn: asyncpg.Connection | asyncpg.Pool, shop_id: str) -> dict:
    """The shop's payment settings, defaults where the shop set none."""
    row = await conn.fetchrow("SELECT * FROM payment_settings WHERE shop_id = $1", shop_id)
    if row is None:
        return dict(DEFAULT_SETTINGS)
    return {k: row[k] for k in SETTINGS}


async def save_payment_settings(
    conn: asyncpg.Connection,
    shop_id: str,
    *,
    capture_at_authorization: bool,
    prepaid_due_days: int,
    authorization_valid_days: int,
    card_gateway: str,
    reauthorize_expiring: bool,
    cancel_overdue_prepaid: bool,
    bank_account: str | None = None,
    updated_by: str,
) -> None:
    """Replaces the shop's payment settings."""
    await conn.execute(
        """
        INSERT INTO payment_settings (shop_id, capture_at_authorization, prepaid_due_days, authorization_valid_days,
            card_gateway, reauthorize_expiring, cancel_overdue_prepaid, updated_by, bank_account)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (shop_id) DO UPDATE SET capture_at_authorization = $2, prepaid_due_days = $3,
            authorization_valid_days = $4, card_gateway = $5, reauthorize_expiring = $6, cancel_overdue_prepaid = $7,
            updated_by = $8, bank_account = $9, updated_at = now()
        """,
        shop_id,
        capture_at_authorization,
        prepaid_due_days,
        authorization_valid_days,
        card_gateway,
        reauthorize_expiring,
        cancel_overdue_prepaid,
        updated_by,
        bank_account,
    )


async def record_received(
    conn: asyncpg.Connection,
    *,
    source_id: str,
    order_id: UUID,
    source: str,
    amount: int,
    reference: str | None = None,
    note: str | None = None,
) -> int | None:
    """Records money received once per `source_id`; returns the order's new received total, None for a repeat."""
    first_time = await conn.fetchval(
        """
        INSERT INTO received_payments (source_id, order_id, source, amount, reference, note)
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true
        """,
        source_id,
        order_id,
        source,
        amount,
        reference,
        note,
    )
    if not first_time:
        return None
    return await conn.fetchval(
        """
        UPDATE payments SET received_amount = received_amount + $2,
            status = CASE WHEN cancelled_at IS NOT NULL THEN status
                          WHEN received_amount + $2 >= amount THEN 'paid' ELSE 'partly_paid' END,
            updated_at = now()
        WHERE order_id = $1 RETURNING received_amount
        """,
        order_id,
        amount,
    )


async def payment_by_reference(conn: asyncpg.Connection | asyncpg.Pool, reference: str) -> asyncpg.Record | None:
    """The payment a prepaid reference belongs to."""
    return await conn.fetchrow("SELECT * FROM payments WHERE reference = $1", reference)


async def claim_callback(conn: asyncpg.Connection, provider_event_id: str) -> bool:
    """Records a provider callback's event id; False if it was seen before."""
    return bool(
        await conn.fetchval(
            "INSERT INTO callback_receipts (provider_event_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true",
            provider_event_id,
        )
    )


async def overdue_payments(conn: asyncpg.Connection, today: date, shop_id: str | None = None) -> list[asyncpg.Record]:
    """Prepaid payments past their due date with money due and no overdue notice yet (of one shop, or all), locked."""
    return await conn.fetch(
        """
        SELECT * FROM payments
        WHERE due_date < $1 AND received_amount < amount AND NOT overdue_notified AND cancelled_at IS NULL
          AND ($2::text IS NULL OR shop_id = $2)
        ORDER BY due_date LIMIT 500 FOR UPDATE SKIP LOCKED
        """,
        today,
        shop_id,
    )


async def mark_overdue_notified(conn: asyncpg.Connection, order_id: UUID) -> None:
    """Remembers that the overdue notice was published."""
    await conn.execute("UPDATE payments SET overdue_notified = true WHERE order_id = $1", order_id)


async def uncaptured_authorizations(conn: asyncpg.Connection, shop_id: str) -> list[asyncpg.Record]:
    """The shop's card authorizations not yet captured nor flagged, locked."""
    return await conn.fetch(
        """
        SELECT * FROM payments
        WHERE shop_id = $1 AND status = 'authorized' AND NOT reauthorization_flagged AND cancelled_at IS NULL
        ORDER BY authorized_at FOR UPDATE SKIP LOCKED
        """,
        shop_id,
    )


async def flag_reauthorization(conn: asyncpg.Connection, order_id: UUID) -> None:
    """Remembers that the authorization was flagged as expiring."""
    await conn.execute("UPDATE payments SET reauthorization_flagged = true WHERE order_id = $1", order_id)


async def payment_view(conn: asyncpg.Pool, order_id: UUID) -> dict | None:
    """The order's payment, its gateway ledger and its received payments, for staff."""
    payment = await conn.fetchrow("SELECT * FROM payments WHERE order_id = $1", order_id)
    if payment is None:
        return None
    calls = await conn.fetch(
        """
        SELECT idempotency_key, operation, amount, status, reference, reason, note, requested_at, completed_at
        FROM gateway_calls WHERE order_id = $1 ORDER BY requested_at
        """,
        order_id,
    )
    received = await conn.fetch(
        "SELECT source_id, source, amount, reference, note, received_at FROM received_payments WHERE order_id = $1 ORDER BY received_at",
        order_id,
    )
    cancellation = await conn.fetchrow("SELECT * FROM cancellations WHERE order_id = $1", order_id)
    return {
        "payment": dict(payment),
        "ledger": [dict(c) for c in calls],
        "received": [dict(r) for r in received],
        "cancellation": dict(cancellation) if cancellation else None,
    }


async def record_cancellation(
    conn: asyncpg.Connection, *, order_id: UUID, shop_id: str, cancel_payment: bool, reason: str, cancelled_by: str
) -> None:
    """Records that the order is cancelled (the first cancellation counts) and marks its payment, if any, cancelled."""
    await conn.execute(
        """
        INSERT INTO cancellations (order_id, shop_id, cancel_payment, reason, cancelled_by)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id) DO NOTHING
        """,
        order_id,
        shop_id,
        cancel_payment,
        reason,
        cancelled_by,
    )
    await conn.execute(
        "UPDATE payments SET cancelled_at = coalesce(cancelled_at, now()), updated_at = now() WHERE order_id = $1",
        order_id,
    )


async def is_cancelled(conn: asyncpg.Connection, order_id: UUID) -> bool:
    """Whether the order was cancelled."""
    return bool(await conn.fetchval("SELECT true FROM cancellations WHERE order_id = $1", order_id))


async def settle_cancellation(
    conn: asyncpg.Connection,
    order_id: UUID,
    *,
    outcome: str,
    amount: int | None,
    refund_owed: int,
    failure_reason: str | None,
    status: str | None,
) -> None:
    """Records what became of the cancelled order's payment, and the payment's new status if it has one."""
    await conn.execute(
        """
        UPDATE cancellations SET outcome = $2, amount = $3, refund_owed = $4, failure_reason = $5, settled_at = now()
        WHERE order_id = $1
        """,
        order_id,
        outcome,
        amount,
        refund_owed,
        failure_reason,
    )
    if status is not None:
        await set_status(conn, order_id, status)


async def bar_opening(conn: asyncpg.Connection, order_id: UUID) -> None:
    """Bars the order's payment from being opened from now on (see `save_opening_intent`), in a cancellation's
    transaction before it reads the payment: waits for an opening in progress to commit, so that the next statement
    finds the payment it opened."""
    await conn.execute(
        "INSERT INTO order_gates (order_id, cancelled) VALUES ($1, true) ON CONFLICT (order_id) DO UPDATE SET cancelled = true",
        order_id,
    )


async def save_opening_intent(
    conn: asyncpg.Connection | asyncpg.Pool,
    payment: dict,
    *,
    existed: bool,
    status: str,
    operation: str,
    key: str,
    amount: int,
    gateway: str | None = None,
    note: str | None = None,
    version: str | None = None,
) -> bool:
    """Creates the payment row from `payment` (in `status`, on `gateway` for a card) unless it `existed` when it was
    read, and records the intent of the payment's first outside call (`operation`: authorize, credit_check) under
    `key`, in one statement. False, with nothing recorded, if meanwhile a concurrent transaction created the payment
    row, changed it from `version` (its xmin as read; None: locked by the caller's transaction), recorded the same
    operation under another key, or the order was cancelled (`bar_opening`): decide again."""
    return await conn.fetchval(
        """
        WITH gate AS (
            INSERT INTO order_gates (order_id) VALUES ($1)
            ON CONFLICT (order_id) DO UPDATE SET cancelled = order_gates.cancelled
            RETURNING cancelled
        ),
        created AS (
            INSERT INTO payments (order_id, shop_id, method, currency, amount, status, customer_id, card_token, gateway,
                correlation_id, traceparent)
            SELECT $1, $2, $3, $4, $5, $15, $6, $7, $8, $9, $10 WHERE NOT $11 AND NOT (SELECT cancelled FROM gate)
            ON CONFLICT (order_id) DO NOTHING
            RETURNING true
        ),
        kept AS (
            SELECT true FROM payments WHERE order_id = $1 AND $11 AND ($17::text IS NULL OR xmin = $17::text::xid)
            FOR UPDATE
        ),
        standing AS (
            SELECT EXISTS (SELECT FROM kept) OR EXISTS (SELECT FROM created) AS ours
            WHERE NOT (SELECT cancelled FROM gate) AND NOT EXISTS (
                SELECT FROM gateway_calls WHERE order_id = $1 AND operation = $16 AND idempotency_key <> $12
            )
        ),
        intent AS (
            INSERT INTO gateway_calls (idempotency_key, order_id, operation, amount, note)
            SELECT $12, $1, $16, $13, $14 FROM standing WHERE ours
            ON CONFLICT DO NOTHING
        )
        SELECT coalesce((SELECT ours FROM standing), false)
        """,
        payment["order_id"],
        payment["shop_id"],
        payment["method"],
        payment["currency"],
        payment["amount"],
        payment["customer_id"],
        payment["card_token"],
        gateway,
        payment["correlation_id"],
        payment["traceparent"],
        existed,
        key,
        amount,
        note,
        status,
        operation,
        version,
    )
