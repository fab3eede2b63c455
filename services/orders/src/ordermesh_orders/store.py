"""SQL of the orders service: the orders table and each order's history."""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from ordermesh_contracts import Address, PaymentMethod, Stage
from ordermesh_servicekit.outbox import OutgoingMessage, outbox_rows
from ordermesh_servicekit.unit_of_work import InboxClaim, fetch_claiming

from .domain.acceptance import Acceptance
from .domain.progress import OrderState
from .store_edits import edits_of
from .store_returns import returns_of

_story = structlog.get_logger("order_story")


@dataclass(frozen=True)
class StoredOrder:
    """An order row as the handlers need it."""

    order_id: UUID
    shop_id: str
    external_order_no: str
    correlation_id: UUID
    state: OrderState
    rule_set: dict[str, Any] | None = None
    """The shop's rule set, read with the order (None: the shop has none)."""
    waiting_statuses: bool = True
    """Whether fired rules left child statuses waiting for a stage (read with the order)."""


@dataclass(frozen=True)
class IntakeBasis:
    """What the shop keeps that decides an intake."""

    watch_listed: bool
    """Whether the shop watches the order's customer."""
    rule_set: dict[str, Any] | None
    """The shop's rule set as stored (None: the shop has none)."""
    status_groups: list[dict[str, Any]]
    """The shop's status groups (empty when never configured)."""


async def intake_basis(conn: asyncpg.Connection, shop_id: str, customer_id: str) -> IntakeBasis:
    """The shop's watch list entry for the customer, its rule set and its status groups, read at once."""
    return (await intake_bases(conn, [(shop_id, customer_id)]))[(shop_id, customer_id)]


_INTAKE_BASES = """
    SELECT w.shop_id, w.customer_id,
           EXISTS (SELECT 1 FROM watch_list l WHERE l.shop_id = w.shop_id AND l.customer_id = w.customer_id)
               AS watch_listed,
           (SELECT rule_set FROM shop_rules r WHERE r.shop_id = w.shop_id) AS rule_set,
           (SELECT groups FROM shop_statuses s WHERE s.shop_id = w.shop_id) AS status_groups
    FROM unnest($1::text[], $2::text[]) AS w(shop_id, customer_id)
"""


async def intake_bases(
    conn: asyncpg.Connection, wanted: list[tuple[str, str]], claim: InboxClaim | None = None
) -> dict[tuple[str, str], IntakeBasis]:
    """`intake_basis` of many (shop, customer) pairs in one statement, by pair; with `claim`, a batch's inbox rows
    written in the same statement (see `InboxClaim`)."""
    arguments = [[shop_id for shop_id, _customer in wanted], [customer_id for _shop, customer_id in wanted]]
    if claim is None:
        rows = await conn.fetch(_INTAKE_BASES, *arguments)
    else:
        claimed, claim_arguments = claim.rows(3)
        query = f"WITH {claimed}, bases AS ({_INTAKE_BASES}) SELECT * FROM claimed LEFT JOIN bases ON true"
        rows = claim.read(await conn.fetch(query, *arguments, *claim_arguments), "shop_id")
    return {
        (row["shop_id"], row["customer_id"]): IntakeBasis(
            watch_listed=row["watch_listed"],
            rule_set=json.loads(row["rule_set"]) if row["rule_set"] else None,
            status_groups=json.loads(row["status_groups"]) if row["status_groups"] else [],
        )
        for row in rows
    }


@dataclass(frozen=True)
class NewOrder:
    """An order as intake decided it, to be inserted (`insert_accepted_orders`)."""

    acceptance: Acceptance
    cause_id: UUID | None
    billing_address: Address | None = None


async def insert_accepted_order(
    conn: asyncpg.Connection, acceptance: Acceptance, cause_id: UUID | None, billing_address: Address | None = None
) -> bool:
    """Inserts a new order as intake decided it (see `insert_accepted_orders`); False (and nothing written) if the
    shop's order number is already known."""
    inserted = await insert_accepted_orders(conn, [NewOrder(acceptance, cause_id, billing_address)])
    return acceptance.accepted.order_id in inserted


async def known_orders(conn: asyncpg.Connection, order_ids: list[UUID]) -> set[UUID]:
    """Which of these orders exist."""
    return {row["order_id"] for row in await conn.fetch("SELECT order_id FROM orders WHERE order_id = ANY($1::uuid[])", order_ids)}


async def insert_accepted_orders(
    conn: asyncpg.Connection, orders: list[NewOrder], publish: Sequence[OutgoingMessage] = ()
) -> set[UUID]:
    """Inserts new orders as intake decided them (with the shop's billing address when it sent one), their tasks, the
    rules that fired and their history, and the outbox rows `publish`, in one statement, and logs the history; returns
    the ids of those inserted (an order whose shop's order number is already known is not, nor anything of it; the
    outbox rows are written whatever was inserted)."""
    if not orders:
        return set()
    published, published_args = outbox_rows(35, publish, "true") if publish else ("", [])
    tasks = [(new, task) for new in orders for task in new.acceptance.tasks]
    firings = [(new, firing) for new in orders for firing in new.acceptance.firings]
    history = [(new, entry) for new in orders for entry in new.acceptance.history]
    rows = await conn.fetch(
        """
        WITH new_order AS (
            INSERT INTO orders (order_id, shop_id, channel, external_order_no, stage, mode, held_from, payment_method,
                                currency, total, flags, snapshot, correlation_id, billing_address,
                                child_status, memo, labels, mail_texts)
            SELECT o.order_id, o.shop_id, o.channel, o.external_order_no, o.stage, o.mode, o.held_from, o.payment_method,
                   o.currency, o.total, o.flags::jsonb, o.snapshot::jsonb, o.correlation_id, o.billing_address::jsonb,
                   o.child_status, o.memo, ARRAY(SELECT jsonb_array_elements_text(o.labels::jsonb)), o.mail_texts::jsonb
            FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                        $9::text[], $10::bigint[], $11::text[], $12::text[], $13::uuid[], $14::text[],
                        $15::text[], $16::text[], $17::text[], $18::text[])
                WITH ORDINALITY AS o(order_id, shop_id, channel, external_order_no, stage, mode, held_from, payment_method,
                                     currency, total, flags, snapshot, correlation_id, billing_address,
                                     child_status, memo, labels, mail_texts, n)
            ORDER BY o.n
            ON CONFLICT DO NOTHING
            RETURNING order_id
        ), tasks AS (
            INSERT INTO order_tasks (order_id, kind, note, blocking, opened_by)
            SELECT t.order_id, t.kind, t.note, t.blocking, t.opened_by
            FROM unnest($19::uuid[], $20::text[], $21::text[], $22::boolean[], $23::text[]) WITH ORDINALITY
                AS t(order_id, kind, note, blocking, opened_by, n)
            WHERE t.order_id IN (SELECT order_id FROM new_order)
            ORDER BY t.n
            RETURNING task_id, order_id
        ), numbered_tasks AS (
            SELECT task_id, order_id, row_number() OVER (PARTITION BY order_id ORDER BY task_id) AS n FROM tasks
        ), firings AS (
            INSERT INTO order_rule_firings (order_id, rule_id, waiting_status, waiting_stage, applied_at)
            SELECT f.order_id, f.rule_id, f.waiting_status, f.waiting_stage, CASE WHEN f.applied THEN now() END
            FROM unnest($24::uuid[], $25::text[], $26::text[], $27::text[], $28::boolean[])
                AS f(order_id, rule_id, waiting_status, waiting_stage, applied)
            WHERE f.order_id IN (SELECT order_id FROM new_order)
        ), history AS (
            INSERT INTO order_history (order_id, actor, cause_id, what, details)
            SELECT h.order_id, h.actor, h.cause_id, h.what,
                   CASE WHEN t.task_id IS NULL THEN h.details::jsonb
                        ELSE h.details::jsonb || jsonb_build_object('task_id', t.task_id) END
            FROM unnest($29::uuid[], $30::uuid[], $31::text[], $32::text[], $33::text[], $34::bigint[]) WITH ORDINALITY
                AS h(order_id, cause_id, actor, what, details, task, n)
            LEFT JOIN numbered_tasks t ON t.order_id = h.order_id AND t.n = h.task
            WHERE h.order_id IN (SELECT order_id FROM new_order)
            ORDER BY h.n
        )"""
        + (f", {published}" if published else "")
        + """
        SELECT o.order_id,
               COALESCE((SELECT array_agg(t.task_id ORDER BY t.n) FROM numbered_tasks t WHERE t.order_id = o.order_id), '{}')
                   AS task_ids
        FROM new_order o
        """,
        [new.acceptance.accepted.order_id for new in orders],
        [new.acceptance.accepted.shop_id for new in orders],
        [new.acceptance.accepted.channel.value for new in orders],
        [new.acceptance.accepted.external_order_no for new in orders],
        [new.acceptance.progress.state.stage.value for new in orders],
        [new.acceptance.progress.state.mode for new in orders],
        [held.value if (held := new.acceptance.progress.state.held_from) else None for new in orders],
        [new.acceptance.progress.state.payment_method.value for new in orders],
        [new.acceptance.accepted.currency for new in orders],
        [new.acceptance.accepted.charges.total for new in orders],
        [json.dumps(new.acceptance.progress.state.flags) for new in orders],
        [new.acceptance.accepted.model_dump_json() for new in orders],
        [new.acceptance.accepted.correlation_id for new in orders],
        [new.billing_address.model_dump_json() if new.billing_address else None for new in orders],
        [new.acceptance.child_status for new in orders],
        [new.acceptance.memo for new in orders],
        [json.dumps(new.acceptance.labels) for new in orders],
        [json.dumps(new.acceptance.mail_texts) for new in orders],
        [new.acceptance.accepted.order_id for new, _task in tasks],
        [task.kind for _new, task in tasks],
        [task.note for _new, task in tasks],
        [task.blocking for _new, task in tasks],
        [task.opened_by for _new, task in tasks],
        [new.acceptance.accepted.order_id for new, _firing in firings],
        [firing.rule_id for _new, firing in firings],
        [firing.waiting_status for _new, firing in firings],
        [firing.waiting_stage.value if firing.waiting_stage else None for _new, firing in firings],
        [firing.applied for _new, firing in firings],
        [new.acceptance.accepted.order_id for new, _entry in history],
        [new.cause_id for new, _entry in history],
        [entry.actor for _new, entry in history],
        [entry.what for _new, entry in history],
        [json.dumps(entry.details) for _new, entry in history],
        [None if entry.task is None else entry.task + 1 for _new, entry in history],
        *published_args,
    )
    task_ids = {row["order_id"]: row["task_ids"] for row in rows}
    for new in orders:
        accepted = new.acceptance.accepted
        if accepted.order_id not in task_ids:
            continue
        for entry in new.acceptance.history:
            details = entry.details if entry.task is None else {"task_id": task_ids[accepted.order_id][entry.task], **entry.details}
            _story.info(
                "order changed", what=entry.what, actor=entry.actor, order_id=str(accepted.order_id),
                shop_order_no=accepted.external_order_no, details=details,
            )
    return set(task_ids)


_LOCKED_ORDER = """
    SELECT o.order_id, o.shop_id, o.external_order_no, o.correlation_id, o.stage, o.mode, o.payment_method,
           o.flags, o.held_from,
           (SELECT count(*) FROM order_tasks t WHERE t.order_id = o.order_id AND t.status = 'open' AND t.blocking)
               AS blocking_tasks,
           (SELECT r.rule_set FROM shop_rules r WHERE r.shop_id = o.shop_id) AS rule_set,
           EXISTS (SELECT 1 FROM order_rule_firings f WHERE f.order_id = o.order_id AND f.waiting_status IS NOT NULL)
               AS waiting_statuses
    FROM orders o
"""


async def lock_order(conn: asyncpg.Connection, order_id: UUID) -> StoredOrder | None:
    """Reads an order (with its shop's rule set and whether rules left statuses waiting) and locks its row until the
    transaction ends, so one order's events apply in turn."""
    row = await conn.fetchrow(_LOCKED_ORDER + "WHERE o.order_id = $1 FOR UPDATE OF o", order_id)
    return None if row is None else _stored_order(row)


async def lock_orders(
    conn: asyncpg.Connection, order_ids: list[UUID], claim: InboxClaim | None = None
) -> dict[UUID, StoredOrder]:
    """`lock_order` for many orders in one statement: those that exist, by id. Rows are locked in order of their id,
    so two transactions locking overlapping sets wait for each other instead of deadlocking. With `claim`, a batch's
    inbox rows are written in the same statement, before the orders are locked (see `InboxClaim`)."""
    locking = _LOCKED_ORDER + "WHERE o.order_id = ANY($1::uuid[]) ORDER BY o.order_id FOR UPDATE OF o"
    rows = await fetch_claiming(conn, claim, locking, order_ids, present="order_id")
    return {row["order_id"]: _stored_order(row) for row in rows}


def _stored_order(row: asyncpg.Record) -> StoredOrder:
    return StoredOrder(
        order_id=row["order_id"],
        shop_id=row["shop_id"],
        external_order_no=row["external_order_no"],
        correlation_id=row["correlation_id"],
        state=OrderState(
            stage=Stage(row["stage"]),
            payment_method=PaymentMethod(row["payment_method"]),
            flags=json.loads(row["flags"]),
            mode=row["mode"],
            blocking_tasks=row["blocking_tasks"],
            held_from=Stage(row["held_from"]) if row["held_from"] else None,
        ),
        rule_set=json.loads(row["rule_set"]) if row["rule_set"] else None,
        waiting_statuses=row["waiting_statuses"],
    )


async def save_state(
    conn: asyncpg.Connection,
    order_id: UUID,
    state: OrderState,
    *,
    history: list[tuple[str, str, dict[str, Any]]] | None = None,
    cause_id: UUID | None = None,
    kept: "Kept | None" = None,
) -> None:
    """Writes the order's stage, mode and flags, and with them, in the same statement, the `history` entries (actor,
    what, details) of the change (logged as `add_entries` logs them) and what the change `kept` (see `save_states`)."""
    entries = [(cause_id, actor, what, details) for actor, what, details in history or []]
    await save_states(conn, [StateSave(order_id, state, entries, kept or Kept())])


@dataclass(frozen=True)
class Paid:
    """What a payments event says the customer paid: captures add up; received and refunded carry running totals from
    payments (an edit's refund, `refunded_more`, adds to the refunded total, which a later refund's running total then
    includes)."""

    captured: int | None = None
    received_total: int | None = None
    refunded_total: int | None = None
    refunded_more: int | None = None

    def then(self, later: "Paid") -> "Paid":
        """This and a `later` event's amounts as one, written once as both written in turn would have left them
        (refunded after both: max(max(r + m1, t1) + m2, t2) = max(r + m1 + m2, max(t1 + m2, t2)))."""
        return Paid(
            captured=_added(self.captured, later.captured),
            received_total=_largest(self.received_total, later.received_total),
            refunded_total=_largest(None if self.refunded_total is None else self.refunded_total + (later.refunded_more or 0), later.refunded_total),
            refunded_more=_added(self.refunded_more, later.refunded_more),
        )


def _added(a: int | None, b: int | None) -> int | None:
    return None if a is None and b is None else (a or 0) + (b or 0)


def _largest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass(frozen=True)
class Parcel:
    """What one parcel of a shipment carried (edits are checked against it): (sku, quantity) lines."""

    shipment_id: UUID
    delivery_index: int
    tracking_number: str
    lines: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Kept:
    """What an event keeps besides flags, written with the order's save: what was paid, parcels shipped."""

    paid: Paid | None = None
    parcels: tuple[Parcel, ...] = ()

    def then(self, later: "Kept") -> "Kept":
        """This and what a later event of the order keeps, as one."""
        paid = later.paid if self.paid is None else self.paid if later.paid is None else self.paid.then(later.paid)
        return Kept(paid, self.parcels + later.parcels)


@dataclass(frozen=True)
class StateSave:
    """One order's save, kept to be written with others (`save_states`)."""

    order_id: UUID
    state: OrderState
    history: list[tuple[UUID | None, str, str, dict[str, Any]]] = field(default_factory=list)
    """(cause id, actor, what, details), in order."""
    kept: Kept = Kept()

    def then(self, later: "StateSave") -> "StateSave":
        """This save and a later one of the same order as one: the later state, both histories in turn, both kepts."""
        return StateSave(self.order_id, later.state, self.history + later.history, self.kept.then(later.kept))


async def save_states(conn: asyncpg.Connection, saves: list[StateSave], publish: Sequence[OutgoingMessage] = ()) -> bool:
    """Saves many orders (each at most once) in one statement: their stages, modes and flags, what was paid, the units
    of parcels shipped (a repeated report of the same parcel overwrites, never adds), their history entries in the
    order given (logged as `add_entries` logs them) and the outbox rows `publish`. False, and nothing written, when
    there is no save."""
    if not saves:
        return False
    published, published_args = outbox_rows(21, publish, "true") if publish else ("", [])
    entries = [(save.order_id, entry) for save in saves for entry in save.history]
    units = {
        (save.order_id, parcel.shipment_id, parcel.tracking_number, sku): (parcel.delivery_index, quantity)
        for save in saves for parcel in save.kept.parcels for sku, quantity in parcel.lines
    }
    paid = [save.kept.paid or Paid() for save in saves]
    # The ids as an index condition of orders too: joined only to unnest's rows, whose count a generic plan does not
    # know, the update seq-scanned orders (every row of it) on a table of a few hundred orders.
    rows = await conn.fetch(
        """
        WITH saved AS (
            UPDATE orders o SET stage = s.stage, mode = s.mode, flags = s.flags::jsonb, held_from = s.held_from,
                paid_captured = o.paid_captured + coalesce(s.captured, 0),
                paid_received = greatest(o.paid_received, coalesce(s.received_total, 0)),
                paid_refunded = greatest(o.paid_refunded + coalesce(s.refunded_more, 0), coalesce(s.refunded_total, 0)),
                updated_at = now()
            FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                        $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
                AS s(order_id, stage, mode, flags, held_from, captured, received_total, refunded_total, refunded_more)
            WHERE o.order_id = s.order_id AND o.order_id = ANY($1::uuid[])
            RETURNING o.order_id, o.external_order_no
        ), shipped AS (
            INSERT INTO order_shipped_units (order_id, shipment_id, delivery_index, tracking_number, sku, quantity)
            SELECT * FROM unnest($10::uuid[], $11::uuid[], $12::bigint[], $13::text[], $14::text[], $15::bigint[])
            ON CONFLICT (order_id, shipment_id, tracking_number, sku) DO UPDATE SET quantity = EXCLUDED.quantity
        ), history AS (
            INSERT INTO order_history (order_id, actor, cause_id, what, details)
            SELECT e.order_id, e.actor, e.cause_id, e.what, e.details::jsonb
            FROM unnest($16::uuid[], $17::uuid[], $18::text[], $19::text[], $20::text[])
                WITH ORDINALITY AS e(order_id, cause_id, actor, what, details, n)
            ORDER BY e.n
        )"""
        + (f", {published}" if published else "")
        + """
        SELECT order_id, external_order_no FROM saved
        """,
        [save.order_id for save in saves],
        [save.state.stage.value for save in saves],
        [save.state.mode for save in saves],
        [json.dumps(save.state.flags) for save in saves],
        [save.state.held_from.value if save.state.held_from else None for save in saves],
        [p.captured for p in paid],
        [p.received_total for p in paid],
        [p.refunded_total for p in paid],
        [p.refunded_more for p in paid],
        [order_id for order_id, _shipment, _tracking, _sku in units],
        [shipment_id for _order, shipment_id, _tracking, _sku in units],
        [delivery_index for delivery_index, _quantity in units.values()],
        [tracking_number for _order, _shipment, tracking_number, _sku in units],
        [sku for _order, _shipment, _tracking, sku in units],
        [quantity for _delivery_index, quantity in units.values()],
        [order_id for order_id, _entry in entries],
        [cause_id for _order, (cause_id, _actor, _what, _details) in entries],
        [actor for _order, (_cause, actor, _what, _details) in entries],
        [what for _order, (_cause, _actor, what, _details) in entries],
        [json.dumps(details) for _order, (_cause, _actor, _what, details) in entries],
        *published_args,
    )
    numbers = {row["order_id"]: row["external_order_no"] for row in rows}
    for save in saves:
        _tell(save.order_id, numbers.get(save.order_id), [(actor, what, details) for _cause, actor, what, details in save.history])
    return True


async def add_history(
    conn: asyncpg.Connection,
    order_id: UUID,
    entries: list[tuple[str, dict[str, Any]]],
    *,
    actor: str,
    cause_id: UUID | None,
) -> None:
    """Appends what one actor did to the order's history (see `add_entries`)."""
    await add_entries(conn, order_id, [(actor, what, details) for what, details in entries], cause_id=cause_id)


async def add_entries(
    conn: asyncpg.Connection, order_id: UUID, entries: list[tuple[str, str, dict[str, Any]]], *, cause_id: UUID | None
) -> None:
    """Appends what happened (actor, what, details) to the order's history, and logs each entry: every stage and flag
    change and every staff action passes through here, so the log tells the order's story (personal data is redacted
    by the log processor)."""
    if not entries:
        return
    external_order_no = await conn.fetchval(
        """
        INSERT INTO order_history (order_id, actor, cause_id, what, details)
        SELECT $1, e.actor, $2, e.what, e.details::jsonb
        FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS e(actor, what, details, n) ORDER BY e.n
        RETURNING (SELECT external_order_no FROM orders o WHERE o.order_id = order_history.order_id)
        """,
        order_id,
        cause_id,
        *_history_columns(entries),
    )
    _tell(order_id, external_order_no, entries)


def _history_columns(entries: list[tuple[str, str, dict[str, Any]]]) -> tuple[list[str], list[str], list[str]]:
    return (
        [actor for actor, _what, _details in entries],
        [what for _actor, what, _details in entries],
        [json.dumps(details) for _actor, _what, details in entries],
    )


def _tell(order_id: UUID, external_order_no: str | None, entries: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Logs each history entry: the log tells the order's story (personal data is redacted by the log processor)."""
    for actor, what, details in entries:
        _story.info("order changed", what=what, actor=actor, order_id=str(order_id), shop_order_no=external_order_no, details=details)


async def open_tasks(
    conn: asyncpg.Connection, order_id: UUID, tasks: list[tuple[str, str, bool]], *, opened_by: str
) -> list[tuple[int, str]]:
    """Opens tasks (kind, note, blocking) unless one of the same kind is already open; returns (id, kind) opened."""
    ids = []
    for kind, note, blocking in tasks:
        task_id = await conn.fetchval(
            """
            INSERT INTO order_tasks (order_id, kind, note, blocking, opened_by)
            SELECT $1, $2, $3, $4, $5
            WHERE $2 = 'staff' OR NOT EXISTS (
                SELECT 1 FROM order_tasks WHERE order_id = $1 AND kind = $2 AND status = 'open')
            RETURNING task_id
            """,
            order_id,
            kind,
            note,
            blocking,
            opened_by,
        )
        if task_id is not None:
            ids.append((task_id, kind))
    return ids


async def close_task(
    conn: asyncpg.Connection, order_id: UUID, task_id: int, *, closed_by: str, note: str | None
) -> asyncpg.Record | None:
    """Closes an open task of the order; returns it, or None if there is no such open task."""
    return await conn.fetchrow(
        """
        UPDATE order_tasks SET status = 'closed', closed_at = now(), closed_by = $3, close_note = $4
        WHERE order_id = $1 AND task_id = $2 AND status = 'open'
        RETURNING task_id, kind
        """,
        order_id,
        task_id,
        closed_by,
        note,
    )


async def close_tasks_of_kind(conn: asyncpg.Connection, order_id: UUID, kinds: list[str], *, closed_by: str) -> None:
    """Closes the open tasks of these kinds (their cause was resolved)."""
    await conn.execute(
        """
        UPDATE order_tasks SET status = 'closed', closed_at = now(), closed_by = $3, close_note = 'resolved'
        WHERE order_id = $1 AND kind = ANY($2::text[]) AND status = 'open'
        """,
        order_id,
        kinds,
        closed_by,
    )


async def add_to_watch_list(conn: asyncpg.Connection, shop_id: str, customer_id: str, reason: str, added_by: str) -> None:
    """Watch-lists a customer (the reason is updated if already listed)."""
    await conn.execute(
        """
        INSERT INTO watch_list (shop_id, customer_id, reason, added_by) VALUES ($1, $2, $3, $4)
        ON CONFLICT (shop_id, customer_id) DO UPDATE SET reason = $3, added_by = $4, added_at = now()
        """,
        shop_id,
        customer_id,
        reason,
        added_by,
    )


async def remove_from_watch_list(conn: asyncpg.Connection, shop_id: str, customer_id: str) -> bool:
    """Takes a customer off the watch list; False if they were not on it."""
    return (
        await conn.execute("DELETE FROM watch_list WHERE shop_id = $1 AND customer_id = $2", shop_id, customer_id)
    ) == "DELETE 1"


async def find_order_ids(conn: asyncpg.Connection, shop_id: str, *, stage: str | None, child_status: str | None,
                         created_from, created_to) -> list[UUID]:
    """Ids of the shop's orders matching a bulk command's filter, oldest first."""
    rows = await conn.fetch(
        """
        SELECT order_id FROM orders
        WHERE shop_id = $1
          AND ($2::text IS NULL OR stage = $2)
          AND ($3::text IS NULL OR child_status = $3)
          AND ($4::date IS NULL OR created_at >= $4::date)
          AND ($5::date IS NULL OR created_at < $5::date + 1)
        ORDER BY created_at
        """,
        shop_id,
        stage,
        child_status,
        created_from,
        created_to,
    )
    return [row["order_id"] for row in rows]


async def update_staff_fields(conn: asyncpg.Connection, order_id: UUID, changes: dict[str, Any]) -> None:
    """Applies a bulk update's changes: child status, memo (appended), labels, carrier, ship date."""
    await conn.execute(
        """
        UPDATE orders SET
            child_status = COALESCE($2, child_status),
            memo = CASE WHEN $3::text IS NULL THEN memo WHEN memo = '' THEN $3 ELSE memo || E'\n' || $3 END,
            labels = ARRAY(SELECT DISTINCT l FROM unnest(labels || $4::text[]) AS l WHERE l <> ALL($5::text[]) ORDER BY l),
            carrier = COALESCE($6, carrier),
            ship_date = COALESCE($7, ship_date),
            updated_at = now()
        WHERE order_id = $1
        """,
        order_id,
        changes.get("child_status"),
        changes.get("memo"),
        changes.get("add_labels") or [],
        changes.get("remove_labels") or [],
        changes.get("carrier"),
        changes.get("ship_date"),
    )


async def order_view(conn: asyncpg.Connection, order_id: UUID, shop_id: str | None) -> dict[str, Any] | None:
    """One order for staff: stage, mode, flags, what was paid, staff fields, its contents (customer, deliveries with
    their addresses and lines, charges, remarks — never the card token), tasks, edits and full history."""
    row = await conn.fetchrow(
        """
        SELECT order_id, shop_id, channel, external_order_no, stage, mode, held_from, payment_method, currency, total,
               flags, child_status, labels, memo, carrier, ship_date, created_at, updated_at,
               snapshot #- '{payment,card_token}' AS contents,
               paid_captured + paid_received - paid_refunded AS paid, edit_count, billing_address
        FROM orders WHERE order_id = $1 AND ($2::text IS NULL OR shop_id = $2)
        """,
        order_id,
        shop_id,
    )
    if row is None:
        return None
    tasks = await conn.fetch(
        "SELECT task_id, kind, note, blocking, status, opened_at, opened_by, closed_at, closed_by, close_note "
        "FROM order_tasks WHERE order_id = $1 ORDER BY task_id",
        order_id,
    )
    history = await conn.fetch(
        "SELECT at, actor, cause_id, what, details FROM order_history WHERE order_id = $1 ORDER BY id", order_id
    )
    view = dict(row)
    view["flags"] = json.loads(row["flags"])
    view["contents"] = json.loads(row["contents"])
    view["billing_address"] = json.loads(row["billing_address"]) if row["billing_address"] else None
    view["tasks"] = [dict(t) for t in tasks]
    view["history"] = [{**dict(h), "details": json.loads(h["details"])} for h in history]
    view["edits"] = await edits_of(conn, order_id)
    view["returns"] = await returns_of(conn, order_id)
    view["returned_total"] = sum(entry["amount"] for entry in view["returns"])
    return view


async def webhook_seen(conn: asyncpg.Connection, webhook_id: str) -> bool:
    """Whether a Shopify webhook id was already published."""
    return bool(await conn.fetchval("SELECT true FROM shopify_webhooks WHERE webhook_id = $1", webhook_id))


async def remember_webhook(conn: asyncpg.Connection, webhook_id: str, shop_domain: str) -> None:
    """Records a published Shopify webhook id."""
    await conn.execute(
        "INSERT INTO shopify_webhooks (webhook_id, shop_domain) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        webhook_id,
        shop_domain,
    )


async def save_rule_set(conn: asyncpg.Connection, shop_id: str, rule_set_json: dict[str, Any], updated_by: str) -> None:
    """Replaces the shop's rule set."""
    await conn.execute(
        """
        INSERT INTO shop_rules (shop_id, rule_set, updated_by) VALUES ($1, $2::jsonb, $3)
        ON CONFLICT (shop_id) DO UPDATE SET rule_set = $2::jsonb, updated_by = $3, updated_at = now()
        """,
        shop_id,
        json.dumps(rule_set_json),
        updated_by,
    )


async def fired_rules(conn: asyncpg.Connection, order_id: UUID) -> set[str]:
    """Rules that already fired for the order."""
    return {r["rule_id"] for r in await conn.fetch("SELECT rule_id FROM order_rule_firings WHERE order_id = $1", order_id)}


async def record_firings(conn: asyncpg.Connection, order_id: UUID, rule_ids: list[str]) -> None:
    """Remembers that these rules fired for the order."""
    await conn.executemany(
        "INSERT INTO order_rule_firings (order_id, rule_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        [(order_id, rule_id) for rule_id in rule_ids],
    )


async def wait_for_stage(conn: asyncpg.Connection, order_id: UUID, waiting: list[tuple[str, str, str]]) -> None:
    """Keeps fired rules' child statuses (rule, status, stage) until the order reaches their stage."""
    await conn.executemany(
        "UPDATE order_rule_firings SET waiting_status = $3, waiting_stage = $4 WHERE order_id = $1 AND rule_id = $2",
        [(order_id, rule_id, status, stage) for rule_id, status, stage in waiting],
    )


async def waiting_statuses(conn: asyncpg.Connection, order_id: UUID) -> list[asyncpg.Record]:
    """The fired rules' child statuses still waiting for their stage, in firing order."""
    return await conn.fetch(
        """
        SELECT rule_id, waiting_status, waiting_stage FROM order_rule_firings
        WHERE order_id = $1 AND waiting_status IS NOT NULL ORDER BY fired_at, rule_id
        """,
        order_id,
    )


async def stop_waiting(conn: asyncpg.Connection, order_id: UUID, rule_ids: list[str], *, applied: bool) -> None:
    """The rules' waiting statuses were applied (or can no longer be)."""
    await conn.execute(
        """
        UPDATE order_rule_firings SET waiting_status = NULL, waiting_stage = NULL,
               applied_at = CASE WHEN $3 THEN now() ELSE applied_at END
        WHERE order_id = $1 AND rule_id = ANY($2::text[])
        """,
        order_id, rule_ids, applied,
    )


async def status_groups(conn: asyncpg.Connection, shop_id: str) -> list[dict[str, Any]]:
    """The shop's status groups (stage, name, children) in display order; empty when never configured."""
    raw = await conn.fetchval("SELECT groups FROM shop_statuses WHERE shop_id = $1", shop_id)
    return json.loads(raw) if raw else []


async def save_status_groups(conn: asyncpg.Connection, shop_id: str, groups: list[dict[str, Any]], updated_by: str) -> None:
    """Replaces the shop's status groups."""
    await conn.execute(
        """
        INSERT INTO shop_statuses (shop_id, groups, updated_by) VALUES ($1, $2::jsonb, $3)
        ON CONFLICT (shop_id) DO UPDATE SET groups = $2::jsonb, updated_by = $3, updated_at = now()
        """,
        shop_id,
        json.dumps(groups),
        updated_by,
    )


async def order_facts_source(conn: asyncpg.Connection, order_id: UUID) -> asyncpg.Record:
    """What rules look at on a stored order: its accepted snapshot, flags, child status and labels."""
    return await conn.fetchrow(
        "SELECT snapshot, flags, child_status, labels, total FROM orders WHERE order_id = $1", order_id
    )


async def set_mail_texts(conn: asyncpg.Connection, order_id: UUID, mail_texts: dict[str, str]) -> None:
    """Stores the text rules insert into mails."""
    await conn.execute("UPDATE orders SET mail_texts = mail_texts || $2::jsonb WHERE order_id = $1", order_id, json.dumps(mail_texts))
