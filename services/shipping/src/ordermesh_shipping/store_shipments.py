"""SQL of the shipping service about shipments: requests, shipping, delivery, labels, tracking and cancelling."""

import json
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import asyncpg

from ordermesh_servicekit.outbox import OutgoingMessage, handled_rows, outbox_rows
from ordermesh_servicekit.unit_of_work import InboxClaim, fetch_claiming


async def shipments_of_order(conn: asyncpg.Connection, order_id: UUID) -> list[asyncpg.Record]:
    """The order's shipments with their state and tracking."""
    return await conn.fetch(
        """
        SELECT shipment_id, order_id, delivery_index, status, carrier, tracking_number, warehouse_request_id,
               shipped_at, delivered_at, cash_collected, request_attempts, last_error, flagged,
               cancel_attempts, cancel_error
        FROM shipments WHERE order_id = $1 ORDER BY delivery_index
        """,
        order_id,
    )


class RequestBasis(NamedTuple):
    """What requesting an order's shipments reads, and the shipments it records, in one statement."""

    processed: bool
    """Whether the inbox holds the message that asks (then nothing else is read or recorded)."""
    groups: list[asyncpg.Record]
    """The order's delivery groups with lines, by delivery index: carrier, skus and units (in sku order), the cash to
    collect and what holds the group back; each row also says whether staff cancelled the order, and gives the group's
    shipment as it now is (shipment_id, status, warehouse_request_id, and the correlation_id and traceparent it was
    requested under), or None for a group this statement recorded no shipment of."""


async def request_basis(
    conn: asyncpg.Connection | asyncpg.Pool,
    message_id: UUID,
    order_id: UUID,
    shipment_ids: list[UUID],
    *,
    correlation_id: UUID | None = None,
    traceparent: str | None = None,
) -> RequestBasis:
    """Whether message `message_id` was processed and, if not, the order's delivery groups to request, each with its
    shipment: unless the order was cancelled, the intent to request the shipment of each group whose delivery index
    has an id in `shipment_ids` (by index; ids can only be made in Python) is recorded as `create_shipments` records
    it, with the order's correlation id and trace context. One statement."""
    rows = await conn.fetch(
        """
        WITH asked AS (
            SELECT EXISTS (SELECT FROM inbox WHERE message_id = $2) AS processed,
                   EXISTS (SELECT FROM cancelled_orders c WHERE c.order_id = $1) AS cancelled
        ), groups AS (
            SELECT l.delivery_index, (array_agg(l.carrier ORDER BY l.sku))[1] AS carrier,
                   array_agg(l.sku ORDER BY l.sku) AS skus, array_agg(l.quantity ORDER BY l.sku) AS units,
                   d.cod_amount, coalesce(d.held_checks, '{}') AS held_checks,
                   coalesce(d.hold_reasons, '{}') AS hold_reasons
            FROM order_lines l LEFT JOIN deliveries d ON d.order_id = l.order_id AND d.delivery_index = l.delivery_index
            WHERE l.order_id = $1 AND NOT (SELECT processed FROM asked)
            GROUP BY l.delivery_index, d.cod_amount, d.held_checks, d.hold_reasons
        ), created AS (
            INSERT INTO shipments (shipment_id, order_id, delivery_index, status, carrier, correlation_id, traceparent)
            SELECT ($3::uuid[])[g.delivery_index + 1], $1, g.delivery_index,
                   CASE WHEN cardinality(g.held_checks) > 0 THEN 'held' ELSE 'requesting' END, g.carrier, $4, $5
            FROM groups g WHERE g.delivery_index < cardinality($3::uuid[]) AND NOT (SELECT cancelled FROM asked)
            ON CONFLICT (shipment_id) DO UPDATE SET shipment_id = shipments.shipment_id
            RETURNING delivery_index, shipment_id, status, warehouse_request_id, correlation_id, traceparent
        )
        SELECT asked.processed, asked.cancelled, g.*, c.shipment_id, c.status, c.warehouse_request_id, c.correlation_id,
               c.traceparent
        FROM asked LEFT JOIN groups g ON true LEFT JOIN created c ON c.delivery_index = g.delivery_index
        ORDER BY g.delivery_index
        """,
        order_id,
        message_id,
        shipment_ids,
        correlation_id,
        traceparent,
    )
    return RequestBasis(rows[0]["processed"], [row for row in rows if row["delivery_index"] is not None])


async def create_shipments(
    conn: asyncpg.Connection | asyncpg.Pool,
    order_id: UUID,
    groups: list[tuple[UUID, int, str, bool]],
    *,
    correlation_id: UUID | None = None,
    traceparent: str | None = None,
) -> list[asyncpg.Record]:
    """Records the intent to request each group's shipment (shipment id, delivery index, carrier, held), or a shipment
    held back by a failed check, with the order's correlation id and trace context for the warehouse's callbacks; a
    shipment that exists is kept as it is. Returns each of these shipments as it now is (delivery index, shipment id,
    status, warehouse request id, and the correlation id and trace context it was requested under), in one
    statement."""
    if not groups:
        return []
    shipment_ids, indices, carriers, held = zip(*groups)
    return await conn.fetch(
        """
        INSERT INTO shipments (shipment_id, order_id, delivery_index, status, carrier, correlation_id, traceparent)
        SELECT g.shipment_id, $1, g.delivery_index, CASE WHEN g.held THEN 'held' ELSE 'requesting' END, g.carrier, $2, $3
        FROM unnest($4::uuid[], $5::int[], $6::text[], $7::boolean[]) AS g (shipment_id, delivery_index, carrier, held)
        ON CONFLICT (shipment_id) DO UPDATE SET shipment_id = shipments.shipment_id
        RETURNING delivery_index, shipment_id, status, warehouse_request_id, correlation_id, traceparent
        """,
        order_id, correlation_id, traceparent, list(shipment_ids), list(indices), list(carriers), list(held),
    )


def _mark_requested(guard: str = "") -> str:
    """The UPDATE of `mark_requested` ($1 shipment ids, $2 request ids), rows also filtered by `guard`."""
    return f"""
        UPDATE shipments s SET status = CASE WHEN s.status = 'requesting' THEN 'requested' ELSE s.status END,
               warehouse_request_id = CASE WHEN s.status IN ('requesting', 'requested') OR s.warehouse_request_id IS NULL
                                           THEN taken.request_id ELSE s.warehouse_request_id END
        FROM unnest($1::uuid[], $2::text[]) AS taken (shipment_id, request_id)
        WHERE s.shipment_id = taken.shipment_id AND s.shipment_id = ANY($1::uuid[]) {guard} RETURNING s.shipment_id, s.status
        """


async def mark_requested(conn: asyncpg.Connection, requests: dict[UUID, str]) -> set[UUID]:
    """The warehouse took these requests (shipment id → warehouse request id); returns the shipments now requested.
    One that already moved on (shipped or cancelled meanwhile) is not, and only a missing request id is filled in."""
    if not requests:
        return set()
    shipment_ids = list(requests)
    rows = await conn.fetch(_mark_requested(), shipment_ids, [requests[shipment_id] for shipment_id in shipment_ids])
    return {row["shipment_id"] for row in rows if row["status"] == "requested"}


class AnswersRecorded(NamedTuple):
    """What `record_answers` did."""

    all_requested: bool
    """Whether every shipment the warehouse took is requested now; if not, nothing else was written."""
    handled: bool
    """Whether the message's inbox row (and its outbox rows, and the failures) were written: False for a message seen
    before, or when not every shipment is requested."""


async def record_answers(
    conn: asyncpg.Connection, requests: dict[UUID, str], failed: list[UUID], *,
    message_id: UUID, topic: str, publish: list[OutgoingMessage],
) -> AnswersRecorded:
    """The warehouse's answers as the message's whole unit of work, in one statement (atomic on its own, no
    transaction): the requests it took marked as `mark_requested` marks them (shipment id → warehouse request id), and
    only if every one of them is requested now (none moved on while the warehouse was asked), the failed ones
    marked as `mark_request_failed` marks them, the message's inbox row and `publish` on the outbox.

    The requests are marked first (the condition reads what that returns) and only for a message the inbox does not
    hold; they stay marked when the rest is not written, as the unit of work the caller then runs marks them again
    (the same request ids: a repeat changes nothing)."""
    shipment_ids = list(requests)
    rows, row_arguments = handled_rows(
        4, message_id, topic, publish,
        when="(SELECT count(*) FROM marked WHERE status = 'requested') = cardinality($1::uuid[])",
    )
    row = await conn.fetchrow(
        f"""
        WITH marked AS ({_mark_requested("AND NOT EXISTS (SELECT FROM inbox WHERE message_id = $4)")}),
        {rows}, failed AS (
            UPDATE shipments SET status = 'request_failed'
            WHERE shipment_id = ANY($3::uuid[]) AND status = 'requesting' AND EXISTS (SELECT FROM seen)
        )
        SELECT (SELECT count(*) FROM marked WHERE status = 'requested') = cardinality($1::uuid[]) AS all_requested,
               EXISTS (SELECT FROM seen) AS handled
        """,
        shipment_ids, [requests[shipment_id] for shipment_id in shipment_ids], failed, *row_arguments,
    )
    return AnswersRecorded(row["all_requested"], row["handled"])


async def lock_shipment(conn: asyncpg.Connection, shipment_id: UUID) -> asyncpg.Record | None:
    """A shipment, locked for this transaction."""
    return await conn.fetchrow("SELECT * FROM shipments WHERE shipment_id = $1 FOR UPDATE", shipment_id)


async def lock_shipments(
    conn: asyncpg.Connection, shipment_ids: list[UUID], claim: InboxClaim | None = None, delivering: list[UUID] = (),
) -> tuple[dict[UUID, asyncpg.Record], dict[UUID, "Delivered"]]:
    """These shipments (those that exist), locked for this transaction in order of id, by id; and for those of them in
    `delivering`, what recording their delivery reads (as `mark_delivered` reads it), by id. One statement; with
    `claim`, a batch's inbox rows are written in it, before the shipments are locked (see `InboxClaim`; each row then
    carries its column too)."""
    locking = """
        SELECT s.*, d.shop_id AS delivered_shop_id, d.others AS delivered_others
        FROM shipments s LEFT JOIN LATERAL (
            SELECT (SELECT l.shop_id FROM order_lines l WHERE l.order_id = s.order_id
                     ORDER BY l.delivery_index, l.sku LIMIT 1) AS shop_id,
                   (SELECT count(*) FROM shipments o
                     WHERE o.order_id = s.order_id AND o.shipment_id <> s.shipment_id
                       AND o.status NOT IN ('delivered', 'cancelled')) AS others
            WHERE s.shipment_id = ANY($2::uuid[])
        ) d ON true
        WHERE s.shipment_id = ANY($1::uuid[]) ORDER BY s.shipment_id FOR UPDATE OF s
    """
    rows = await fetch_claiming(conn, claim, locking, shipment_ids, list(delivering), present="shipment_id")
    delivered = {
        row["shipment_id"]: Delivered(row["delivered_shop_id"], row["delivered_others"])
        for row in rows if row["delivered_others"] is not None
    }
    return {row["shipment_id"]: row for row in rows}, delivered


async def parcel_owner(conn: asyncpg.Connection, tracking_number: str) -> UUID | None:
    """The shipment a parcel with this tracking number belongs to, if one was recorded."""
    return await conn.fetchval("SELECT shipment_id FROM parcels WHERE tracking_number = $1", tracking_number)


class ParcelFacts(NamedTuple):
    """What booking a parcel of a shipment reads, in one statement."""

    owner: UUID | None
    """The shipment a parcel with this tracking number already belongs to."""
    shop_id: str | None
    group: dict[str, int]
    """Units per sku of the shipment's delivery group."""
    shipped_before: dict[str, int]
    """Units per sku the shipment's parcels carried so far."""
    allocated: dict[str, int]
    """Units per sku set aside for the order (default warehouse, shipped ones included)."""
    order_shipped_before: dict[str, int]
    """Units per sku every parcel of the order carried so far."""
    others_unshipped: int
    """The order's other shipments not yet fully shipped (cancelled ones don't count)."""


async def parcel_facts(
    conn: asyncpg.Connection, shipment: asyncpg.Record, tracking_number: str, warehouse: str
) -> ParcelFacts:
    """Everything booking a parcel of the (locked) shipment reads, in one statement."""
    return (await parcels_facts(conn, [(shipment, tracking_number)], warehouse))[shipment["shipment_id"], tracking_number]


async def parcels_facts(
    conn: asyncpg.Connection, parcels: list[tuple[asyncpg.Record, str]], warehouse: str
) -> dict[tuple[UUID, str], ParcelFacts]:
    """Everything booking each of these parcels (a locked shipment and a tracking number each) reads, as if it were
    the only one, in one statement, by (shipment id, tracking number)."""
    rows = await conn.fetch(
        """
        SELECT p.shipment_id, p.tracking_number,
               (SELECT x.shipment_id FROM parcels x WHERE x.tracking_number = p.tracking_number) AS owner,
               (SELECT l.shop_id FROM order_lines l WHERE l.order_id = p.order_id ORDER BY l.delivery_index, l.sku LIMIT 1) AS shop_id,
               (SELECT jsonb_object_agg(l.sku, l.quantity) FROM order_lines l
                 WHERE l.order_id = p.order_id AND l.delivery_index = p.delivery_index) AS group_units,
               (SELECT jsonb_object_agg(x.sku, x.units) FROM (
                    SELECT l.sku, sum(l.quantity) AS units FROM parcel_lines l WHERE l.shipment_id = p.shipment_id GROUP BY l.sku
                ) x) AS shipped_before,
               (SELECT jsonb_object_agg(a.sku, a.quantity) FROM allocations a
                 WHERE a.order_id = p.order_id AND a.warehouse = $5) AS allocated,
               (SELECT jsonb_object_agg(x.sku, x.units) FROM (
                    SELECT l.sku, sum(l.quantity) AS units
                    FROM parcels o JOIN parcel_lines l ON l.shipment_id = o.shipment_id AND l.tracking_number = o.tracking_number
                    WHERE o.order_id = p.order_id GROUP BY l.sku
                ) x) AS order_shipped_before,
               (SELECT count(*) FROM shipments s
                 WHERE s.order_id = p.order_id AND s.shipment_id <> p.shipment_id
                   AND s.status NOT IN ('shipped', 'delivered', 'cancelled')) AS others
        FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[]) AS p (shipment_id, order_id, delivery_index, tracking_number)
        """,
        [shipment["shipment_id"] for shipment, _ in parcels],
        [shipment["order_id"] for shipment, _ in parcels],
        [shipment["delivery_index"] for shipment, _ in parcels],
        [tracking_number for _, tracking_number in parcels],
        warehouse,
    )

    def facts(row: asyncpg.Record) -> ParcelFacts:
        def units(column: str) -> dict[str, int]:
            return json.loads(row[column]) if row[column] else {}

        return ParcelFacts(
            row["owner"], row["shop_id"], units("group_units"), units("shipped_before"), units("allocated"),
            units("order_shipped_before"), row["others"],
        )

    return {(row["shipment_id"], row["tracking_number"]): facts(row) for row in rows}


class ParcelBooked(NamedTuple):
    """A parcel of a shipment, as `book_parcel` books it: the units per sku it carries, and how many of
    them come out of the order's allocation."""

    shipment_id: UUID
    order_id: UUID
    tracking_number: str
    carrier: str
    shipped_at: datetime
    units: dict[str, int]
    from_allocation: dict[str, int]


async def book_parcel(conn: asyncpg.Connection, parcel: ParcelBooked, *, status: str, warehouse: str) -> asyncpg.Record:
    """Books a parcel of its shipment in one statement: the parcel and the units per sku it carries; the shipment's
    status becomes `status` (the first parcel's tracking number and time stay the shipment's own); the units leave
    stock on hand, `parcel.from_allocation` of them the allocation too (on hand never drops below what other orders
    hold). Returns the shipment as saved."""
    units, from_allocation = parcel.units, parcel.from_allocation
    skus = sorted(units)
    return await conn.fetchrow(
        """
        WITH parcel AS (
            INSERT INTO parcels (shipment_id, tracking_number, order_id, carrier, shipped_at) VALUES ($1, $3, $2, $4, $5)
        ), carried AS (
            INSERT INTO parcel_lines (shipment_id, tracking_number, sku, quantity)
            SELECT $1, $3, c.sku, c.units FROM unnest($7::text[], $8::int[]) AS c (sku, units)
        ), taken AS (
            UPDATE stock SET on_hand = greatest(stock.on_hand - c.units, stock.allocated - c.from_allocation),
                   allocated = stock.allocated - c.from_allocation
            FROM unnest($7::text[], $8::int[], $9::int[]) AS c (sku, units, from_allocation)
            WHERE stock.sku = c.sku AND stock.sku = ANY($7::text[]) AND stock.warehouse = $10
        )
        UPDATE shipments SET status = $6, carrier = $4, tracking_number = coalesce(tracking_number, $3),
               shipped_at = coalesce(shipped_at, $5)
        WHERE shipment_id = $1
        RETURNING *
        """,
        parcel.shipment_id, parcel.order_id, parcel.tracking_number, parcel.carrier, parcel.shipped_at, status,
        skus, [units[sku] for sku in skus], [from_allocation.get(sku, 0) for sku in skus], warehouse,
    )


async def shipment_shipped_units(conn: asyncpg.Connection, shipment_id: UUID) -> dict[str, int]:
    """Units per sku the shipment's parcels carried so far."""
    rows = await conn.fetch(
        "SELECT sku, sum(quantity)::bigint AS units FROM parcel_lines WHERE shipment_id = $1 GROUP BY sku", shipment_id
    )
    return {row["sku"]: row["units"] for row in rows}


async def order_shipped_units(conn: asyncpg.Connection, order_id: UUID) -> dict[str, int]:
    """Units per sku every parcel of the order carried so far (goods that left after a cancel included)."""
    rows = await conn.fetch(
        """
        SELECT l.sku, sum(l.quantity)::bigint AS units
        FROM parcels p JOIN parcel_lines l ON l.shipment_id = p.shipment_id AND l.tracking_number = p.tracking_number
        WHERE p.order_id = $1 GROUP BY l.sku
        """,
        order_id,
    )
    return {row["sku"]: row["units"] for row in rows}


async def parcels_of_order(conn: asyncpg.Connection, order_id: UUID) -> list[asyncpg.Record]:
    """The order's parcels in the order they left, each with its lines as {sku: units}."""
    return await conn.fetch(
        """
        SELECT p.shipment_id, p.tracking_number, p.carrier, p.shipped_at,
               jsonb_object_agg(l.sku, l.quantity) AS lines
        FROM parcels p JOIN parcel_lines l ON l.shipment_id = p.shipment_id AND l.tracking_number = p.tracking_number
        WHERE p.order_id = $1
        GROUP BY p.shipment_id, p.tracking_number, p.carrier, p.shipped_at
        ORDER BY p.shipped_at, p.tracking_number
        """,
        order_id,
    )


async def record_request_failure(conn: asyncpg.Connection, shipment_id: UUID, error: str) -> int:
    """Counts one failed attempt to request the shipment; returns the attempts so far."""
    return await conn.fetchval(
        """
        UPDATE shipments SET request_attempts = request_attempts + 1, last_error = $2
        WHERE shipment_id = $1 RETURNING request_attempts
        """,
        shipment_id,
        error,
    )


async def mark_request_failed(conn: asyncpg.Connection, shipment_ids: list[UUID]) -> None:
    """The warehouse never took these requests: staff must act."""
    if shipment_ids:
        await conn.execute(
            "UPDATE shipments SET status = 'request_failed' WHERE shipment_id = ANY($1::uuid[]) AND status = 'requesting'",
            shipment_ids,
        )


async def shipment(conn: asyncpg.Connection, shipment_id: UUID) -> asyncpg.Record | None:
    """One shipment."""
    return await conn.fetchrow("SELECT * FROM shipments WHERE shipment_id = $1", shipment_id)


class Delivered(NamedTuple):
    """What recording a delivery reads besides the shipment, in the statement that records it."""

    shop_id: str
    others_undelivered: int
    """The order's other shipments not yet delivered (cancelled ones don't count)."""


async def mark_delivered(
    conn: asyncpg.Connection, shipment_id: UUID, order_id: UUID, delivered_at: datetime, cash: int | None
) -> Delivered:
    """The carrier delivered the (locked) shipment of the order and collected `cash` on delivery; returns the order's
    shop and how many of its other shipments are still undelivered, in one statement."""
    row = await conn.fetchrow(
        """
        WITH delivered AS (
            UPDATE shipments SET status = 'delivered', delivered_at = $3, cash_collected = $4 WHERE shipment_id = $1
        )
        SELECT (SELECT l.shop_id FROM order_lines l WHERE l.order_id = $2 ORDER BY l.delivery_index, l.sku LIMIT 1) AS shop_id,
               (SELECT count(*) FROM shipments s
                 WHERE s.order_id = $2 AND s.shipment_id <> $1 AND s.status NOT IN ('delivered', 'cancelled')) AS others
        """,
        shipment_id,
        order_id,
        delivered_at,
        cash,
    )
    return Delivered(row["shop_id"], row["others"])


async def shipments_for_labels(conn: asyncpg.Connection, shop_id: str, shipment_ids: list[UUID] | None) -> list[asyncpg.Record]:
    """Shipments of the shop with their delivery (address, wishes) and lines: the given ones, or every requested one."""
    return await conn.fetch(
        """
        SELECT s.shipment_id, s.label_no, s.order_id, s.delivery_index, s.status, s.carrier, d.address, d.requested_date,
               d.time_slot, d.cod_amount, d.accepted_at,
               (SELECT array_agg(l.name ORDER BY l.sku) FROM order_lines l
                 WHERE l.order_id = s.order_id AND l.delivery_index = s.delivery_index) AS names,
               (SELECT array_agg(l.sku ORDER BY l.sku) FROM order_lines l
                 WHERE l.order_id = s.order_id AND l.delivery_index = s.delivery_index) AS skus
        FROM shipments s JOIN deliveries d ON d.order_id = s.order_id AND d.delivery_index = s.delivery_index
        WHERE d.shop_id = $1
          AND (($2::uuid[] IS NULL AND s.status = 'requested' AND s.carrier LIKE 'yamato%')
               OR s.shipment_id = ANY($2::uuid[]))
        ORDER BY d.accepted_at, s.order_id, s.delivery_index
        """,
        shop_id,
        shipment_ids,
    )


async def shop_label_numbers(conn: asyncpg.Connection, shop_id: str, numbers: list[str]) -> dict[str, str]:
    """Which of these management numbers are shipments of the shop, each mapped to the shipment's label number: the
    number itself, or a shipment id (as label files written before label numbers carried)."""
    rows = await conn.fetch(
        """
        SELECT given, s.label_no::text AS label_no FROM unnest($2::text[]) AS given
        JOIN shipments s ON s.label_no::text = given OR s.shipment_id::text = given
        JOIN deliveries d ON d.order_id = s.order_id AND d.delivery_index = s.delivery_index
        WHERE d.shop_id = $1
        """,
        shop_id,
        numbers,
    )
    return {row["given"]: row["label_no"] for row in rows}


async def lock_shipment_by_label_no(conn: asyncpg.Connection, label_no: int) -> asyncpg.Record | None:
    """A shipment by its label number, locked for this transaction."""
    return await conn.fetchrow("SELECT * FROM shipments WHERE label_no = $1 FOR UPDATE", label_no)


async def tracking_owners(conn: asyncpg.Connection, numbers: list[str]) -> dict[str, str]:
    """Tracking number → the label number of the shipment a parcel of which already has it."""
    rows = await conn.fetch(
        """
        SELECT p.tracking_number, s.label_no::text AS label_no FROM parcels p JOIN shipments s USING (shipment_id)
        WHERE p.tracking_number = ANY($1::text[])
        """,
        numbers,
    )
    return {row["tracking_number"]: row["label_no"] for row in rows}


async def flag_shipped_after_cancel(conn: asyncpg.Connection, shipment_id: UUID, reason: str) -> asyncpg.Record:
    """A cancelled shipment left anyway: it stays cancelled, flagged, with the reason for staff. Returns the shipment
    as saved."""
    return await conn.fetchrow(
        """
        UPDATE shipments SET status = 'cancelled', flagged = 'shipped_after_cancel', cancel_error = $2
        WHERE shipment_id = $1 RETURNING *
        """,
        shipment_id,
        reason,
    )


async def lock_shipments_of_order(conn: asyncpg.Connection, order_id: UUID) -> list[asyncpg.Record]:
    """The order's shipments, locked (before any stock row, as shipping a shipment locks them), by delivery group."""
    return await conn.fetch(
        "SELECT * FROM shipments WHERE order_id = $1 ORDER BY delivery_index FOR UPDATE", order_id
    )


async def record_cancel_failure(conn: asyncpg.Connection, shipment_id: UUID, error: str) -> int:
    """Counts one failed attempt to cancel the shipment at the warehouse; returns the attempts so far."""
    return await conn.fetchval(
        """
        UPDATE shipments SET cancel_attempts = cancel_attempts + 1, cancel_error = $2
        WHERE shipment_id = $1 RETURNING cancel_attempts
        """,
        shipment_id,
        error,
    )


async def mark_cancelled(conn: asyncpg.Connection, shipment_ids: list[UUID]) -> None:
    """These shipments are cancelled (at the warehouse too, where it had them)."""
    await conn.execute(
        "UPDATE shipments SET status = 'cancelled', cancel_error = NULL WHERE shipment_id = ANY($1::uuid[])", shipment_ids
    )


async def mark_cancel_failed(conn: asyncpg.Connection, shipment_id: UUID, reason: str) -> None:
    """The shipment could not be cancelled: it keeps its state, with the reason for staff."""
    await conn.execute("UPDATE shipments SET cancel_error = $2 WHERE shipment_id = $1", shipment_id, reason)



async def mark_reissued(conn: asyncpg.Connection, shipment_id: UUID, warehouse_request_id: str) -> None:
    """The shipment's request was cancelled and requested again after an edit: this is its live request now."""
    await conn.execute(
        """
        UPDATE shipments SET status = 'requested', warehouse_request_id = $2, cancel_error = NULL
        WHERE shipment_id = $1
        """,
        shipment_id,
        warehouse_request_id,
    )


async def mark_reissue_failed(conn: asyncpg.Connection, shipment_id: UUID) -> None:
    """The old request was cancelled after an edit and the warehouse never took the new one: staff must act."""
    await conn.execute("UPDATE shipments SET status = 'request_failed' WHERE shipment_id = $1", shipment_id)


async def shipment_origin(conn: asyncpg.Connection, shipment_id: UUID, order_id: UUID) -> asyncpg.Record | None:
    """The correlation id and trace context the shipment was requested under (they never change once recorded); None
    if no shipment with this id belongs to the order."""
    return await conn.fetchrow(
        "SELECT correlation_id, traceparent FROM shipments WHERE shipment_id = $1 AND order_id = $2", shipment_id, order_id
    )


async def claim_warehouse_callback(conn: asyncpg.Connection, event_id: UUID, report: OutgoingMessage) -> bool:
    """Records a warehouse callback's event id and queues its report on the outbox, in one statement (atomic on its
    own: no transaction needed); False, and nothing written, if the event id was accepted before."""
    published, arguments = outbox_rows(2, [report], "EXISTS (SELECT FROM claimed)")
    return await conn.fetchval(
        f"""
        WITH claimed AS (
            INSERT INTO warehouse_callback_receipts (event_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true
        ), {published}
        SELECT EXISTS (SELECT FROM claimed)
        """,
        event_id,
        *arguments,
    )
