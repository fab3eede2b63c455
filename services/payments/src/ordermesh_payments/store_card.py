"""SQL of a card order's gateway calls: what an authorization or a capture decides on, read in one statement, and each
intent (on the payment row as it was read) and each result written in one statement."""

from dataclasses import dataclass
from uuid import UUID

import asyncpg
from ordermesh_servicekit.outbox import Effect

from .domain.gateway_calls import AuthorizationFacts, CaptureFacts
from .store import DEFAULT_SETTINGS


@dataclass(frozen=True)
class AuthorizationBasis:
    """An authorization's facts and the version (xmin) of the payment row they come from (None: no payment yet), which
    the intent must find unchanged."""

    facts: AuthorizationFacts
    version: str | None


async def authorization_facts(
    conn: asyncpg.Connection | asyncpg.Pool, message_id: UUID, order_id: UUID, shop_id: str
) -> AuthorizationBasis:
    """Whether the message was processed, the order cancelled, its payment and its authorizations so far, and the
    shop's card settings, read in one statement (nothing locked: see `store.save_opening_intent`)."""
    row = await conn.fetchrow(
        """
        SELECT EXISTS (SELECT FROM inbox WHERE message_id = $1) AS processed,
               EXISTS (SELECT FROM cancellations WHERE order_id = $2) OR p.cancelled_at IS NOT NULL AS cancelled,
               p.order_id IS NOT NULL AS payment_exists, p.gateway AS payment_gateway, p.version,
               s.card_gateway, s.capture_at_authorization,
               ARRAY(SELECT idempotency_key FROM gateway_calls WHERE order_id = $2 AND operation = 'authorize'
                     ORDER BY requested_at) AS authorize_keys
        FROM (SELECT) AS one
        LEFT JOIN LATERAL (SELECT order_id, gateway, cancelled_at, xmin::text AS version FROM payments WHERE order_id = $2) AS p
            ON true
        LEFT JOIN payment_settings AS s ON s.shop_id = $3
        """,
        message_id,
        order_id,
        shop_id,
    )
    has_settings = row["card_gateway"] is not None
    facts = AuthorizationFacts(
        processed=row["processed"],
        cancelled=row["cancelled"],
        payment_exists=row["payment_exists"],
        payment_gateway=row["payment_gateway"],
        shop_gateway=row["card_gateway"] if has_settings else DEFAULT_SETTINGS["card_gateway"],
        capture_at_authorization=(
            row["capture_at_authorization"] if has_settings else DEFAULT_SETTINGS["capture_at_authorization"]
        ),
        authorize_keys=tuple(row["authorize_keys"]),
    )
    return AuthorizationBasis(facts, row["version"])


async def apply(conn: asyncpg.Connection, effect: Effect) -> None:
    """Writes `effect` in the caller's transaction, with no inbox row to wait for."""
    sql, args = effect
    await conn.execute(f"WITH seen AS (SELECT), {sql} SELECT", *args)


def authorized(order_id: UUID, *, key: str, authorization_id: str, amount: int) -> Effect:
    """Records the gateway's approval of the authorization `key` and marks the payment authorized for `amount`."""
    return (
        """
        call AS (
            UPDATE gateway_calls SET status = 'succeeded', reference = $3, reason = NULL, completed_at = now()
            WHERE idempotency_key = $2 AND EXISTS (SELECT FROM seen)
        ),
        paid AS (
            UPDATE payments SET status = 'authorized', authorization_id = $3, authorized_amount = $4,
                authorized_at = now(), updated_at = now()
            WHERE order_id = $1 AND EXISTS (SELECT FROM seen)
        )
        """,
        (order_id, key, authorization_id, amount),
    )


async def save_authorized(conn: asyncpg.Connection, order_id: UUID, *, key: str, authorization_id: str, amount: int) -> None:
    """Records the gateway's approval of the authorization `key` and marks the payment authorized for `amount`, in the
    caller's transaction."""
    await apply(conn, authorized(order_id, key=key, authorization_id=authorization_id, amount=amount))


def call_refused(order_id: UUID, *, key: str, reference: str | None, reason: str | None, payment_status: str) -> Effect:
    """Records the gateway's refusal of the call `key` and puts the payment in `payment_status` (its
    authorization_failed or capture_failed)."""
    return (
        """
        call AS (
            UPDATE gateway_calls SET status = 'failed', reference = $3, reason = $4, completed_at = now()
            WHERE idempotency_key = $2 AND EXISTS (SELECT FROM seen)
        ),
        refused AS (
            UPDATE payments SET status = $5, updated_at = now() WHERE order_id = $1 AND EXISTS (SELECT FROM seen)
        )
        """,
        (order_id, key, reference, reason, payment_status),
    )


@dataclass(frozen=True)
class CaptureBasis:
    """A capture's facts, the payment row they come from (None: no payment yet), whose authorization, gateway and
    credit check the call needs (the row also holds `processed`), and its version (xmin), which the intent must find
    unchanged."""

    facts: CaptureFacts
    payment: asyncpg.Record | None
    version: str | None


async def capture_basis(conn: asyncpg.Connection | asyncpg.Pool, message_id: UUID, order_id: UUID) -> CaptureBasis:
    """Whether the message was processed, and the order's payment row, read in one statement (nothing locked: see
    `save_capture_intent`)."""
    row = await conn.fetchrow(
        """
        SELECT p.*, EXISTS (SELECT FROM inbox WHERE message_id = $1) AS processed
        FROM (SELECT) AS one
        LEFT JOIN LATERAL (SELECT *, xmin::text AS version FROM payments WHERE order_id = $2) AS p ON true
        """,
        message_id,
        order_id,
    )
    payment = row if row["order_id"] is not None else None
    return CaptureBasis(
        CaptureFacts(
            processed=row["processed"],
            method=payment["method"] if payment else None,
            status=payment["status"] if payment else None,
            cancelled=bool(payment) and payment["cancelled_at"] is not None,
            amount=payment["amount"] if payment else 0,
            authorized=(payment["authorized_amount"] or 0) if payment else 0,
        ),
        payment,
        row["version"],
    )


async def save_capture_intent(
    conn: asyncpg.Connection | asyncpg.Pool, order_id: UUID, *, key: str, amount: int, note: str | None,
    version: str | None = None,
) -> bool:
    """Records the capture intent under `key` (kept as it is if it exists) and marks the payment capturing, in one
    statement. False, with nothing recorded, if the payment row is no longer at `version` (its xmin as read; None:
    locked by the caller's transaction): decide again."""
    return await conn.fetchval(
        """
        WITH marked AS (
            UPDATE payments SET status = 'capturing', updated_at = now()
            WHERE order_id = $1 AND ($5::text IS NULL OR xmin = $5::text::xid)
            RETURNING true
        ),
        intent AS (
            INSERT INTO gateway_calls (idempotency_key, order_id, operation, amount, note)
            SELECT $2, $1, 'capture', $3, $4 WHERE EXISTS (SELECT FROM marked)
            ON CONFLICT DO NOTHING
        )
        SELECT EXISTS (SELECT FROM marked)
        """,
        order_id,
        key,
        amount,
        note,
        version,
    )


def captured(order_id: UUID, *, key: str, capture_id: str | None, amount: int) -> Effect:
    """Records the gateway's approval of the capture `key` and marks the payment captured for `amount`."""
    return (
        """
        call AS (
            UPDATE gateway_calls SET status = 'succeeded', reference = $3, reason = NULL, completed_at = now()
            WHERE idempotency_key = $2 AND EXISTS (SELECT FROM seen)
        ),
        paid AS (
            UPDATE payments SET status = 'captured', captured_amount = $4, capture_id = $3, updated_at = now()
            WHERE order_id = $1 AND EXISTS (SELECT FROM seen)
        )
        """,
        (order_id, key, capture_id, amount),
    )
