"""Requesting an order's shipments from the warehouse when it is ready to ship, holding back the delivery groups a
failed check stops, and requesting them once staff resolve the check."""

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from ordermesh_contracts import Message, ShipmentHoldReleased, ShipmentRequested, ShipmentRequestFailed, topics
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext, TransientError, UnitOfWork
from ordermesh_servicekit.outbox import OutgoingMessage
from ordermesh_servicekit.tracing import current_traceparent

from . import store_holds, store_shipments
from .adapters.ingress import ShipmentOrigins
from .adapters.warehouse import CSV_LABEL_CARRIERS, ShipmentRequest, Warehouse, WarehouseRejected
from .checks import held_announcement
from .domain.allocation import shipment_id_for
from .domain.shipment_requests import Group, RequestPlan, Shipment, plan_requests

Finish = Callable[[UnitOfWork], Awaitable[None]]
"""A last step in the message's unit of work (events or a command's answer)."""


async def request_shipments(
    warehouse: Warehouse,
    ctx: MessageContext,
    *,
    order_id: UUID,
    shop_id: str,
    cause: Message,
    max_attempts: int,
    announce_held: bool = False,
    finish: Finish | None = None,
    released: frozenset[int] = frozenset(),
    origins: ShipmentOrigins | None = None,
) -> None:
    """Creates the order's shipments (a group held by a failed check as 'held'), asks the warehouse for each one still
    to request, and records the answers; ShipmentRequested or ShipmentRequestFailed per group, and ShipmentHeld per
    held group when `announce_held`. A cancelled order is requested nothing. A group in `released` was held: its
    request carries a new idempotency key, as an earlier request of it may have been cancelled at the warehouse.
    `origins`: where the warehouse's callbacks find what each shipment was requested under, told before it is asked.

    Load, decide, save: one statement reads whether the message was processed and the groups, and records every
    group's shipment (the intent, committed by itself before the warehouse is asked; a group past the first
    `_IDS_GIVEN` is recorded by a statement of its own), the warehouse is asked, and one statement records the
    answers with the message's inbox row and announcements (`store_shipments.record_answers`). They are recorded in the message's unit of work instead
    when `finish` has more to do, or when a shipment the warehouse took moved on meanwhile (shipped or cancelled while
    the warehouse was slow to answer: its request is not announced).
    """
    basis = await store_shipments.request_basis(
        ctx.pool, ctx.message_id, order_id, [shipment_id_for(order_id, index) for index in range(_IDS_GIVEN)],
        correlation_id=cause.correlation_id, traceparent=current_traceparent(),
    )
    if basis.processed:
        return
    plan = await _record_intent(ctx.pool, order_id, basis.groups, cause, origins)
    answers = await _ask_warehouse(warehouse, ctx, plan, order_id=order_id, cause=cause, released=released, max_attempts=max_attempts)
    held = [held_announcement(order_id, shop_id, g.index, g.holds, cause.caused()) for g in plan.held] if announce_held else []
    if finish is None:
        async with ctx.pool.acquire() as conn:
            recorded = await store_shipments.record_answers(
                conn, _request_ids(answers), _failed_ids(answers), message_id=ctx.message_id, topic=ctx.topic,
                publish=[
                    OutgoingMessage.of(topics.SHIPPING_EVENTS, message)
                    for message in [*_announced(answers, answers.requested, order_id=order_id, shop_id=shop_id, cause=cause), *held]
                ],
            )
        if recorded.handled:
            return
        if recorded.all_requested:
            raise DuplicateMessage(str(ctx.message_id))
    async with ctx.unit_of_work() as uow:
        now_requested = await store_shipments.mark_requested(uow.conn, _request_ids(answers))
        await store_shipments.mark_request_failed(uow.conn, _failed_ids(answers))
        for message in [*_announced(answers, now_requested, order_id=order_id, shop_id=shop_id, cause=cause), *held]:
            uow.publish(topics.SHIPPING_EVENTS, message)
        if finish:
            await finish(uow)


@dataclass
class _Answers:
    requested: dict[UUID, tuple[int, str]] = field(default_factory=dict)
    """Shipment id → (delivery index, warehouse request id) of each request taken, standing ones included."""
    failed: list[tuple[int, UUID, int, str]] = field(default_factory=list)
    """(delivery index, shipment id, attempts, reason) of each request the warehouse never took."""


_IDS_GIVEN = 4
"""Delivery groups whose shipment `store_shipments.request_basis` records (nearly every order has one or two)."""


async def _record_intent(
    pool: asyncpg.Pool, order_id: UUID, rows: list[asyncpg.Record], cause: Message, origins: ShipmentOrigins | None
) -> RequestPlan:
    """Records the shipment (the intent to request it) of every group `store_shipments.request_basis` recorded none
    of, in one statement, tells `origins` what every shipment was requested under, and decides what to ask the
    warehouse."""
    groups = _groups_to_request(rows)
    recorded = [row for row in rows if row["shipment_id"] is not None]
    recorded_indices = {row["delivery_index"] for row in recorded}
    unrecorded = [group for group in groups if group.index not in recorded_indices]
    recorded += await store_shipments.create_shipments(
        pool, order_id, [(shipment_id_for(order_id, g.index), g.index, g.carrier, bool(g.holds)) for g in unrecorded],
        correlation_id=cause.correlation_id, traceparent=current_traceparent(),
    )
    if origins is not None:
        for row in recorded:
            origins.remember(row["shipment_id"], order_id, (row["correlation_id"], row["traceparent"]))
    return plan_requests(groups, {
        row["delivery_index"]: Shipment(row["shipment_id"], row["status"], row["warehouse_request_id"]) for row in recorded
    })


async def _ask_warehouse(
    warehouse: Warehouse, ctx: MessageContext, plan: RequestPlan, *, order_id: UUID, cause: Message,
    released: frozenset[int], max_attempts: int,
) -> _Answers:
    """Asks the warehouse for each shipment to request; a transient failure is raised (the message is retried) until
    the shipment's attempts reach `max_attempts`."""
    answers = _Answers({shipment.shipment_id: (group.index, shipment.warehouse_request_id) for group, shipment in plan.standing})
    for group, shipment_id in plan.to_request:
        request = ShipmentRequest(
            idempotency_key=f"{shipment_id}:released-{cause.event_id}" if group.index in released else str(shipment_id),
            shipment_id=str(shipment_id),
            order_id=str(order_id),
            carrier=group.carrier,
            lines=[{"sku": sku, "quantity": units} for sku, units in group.lines],
            report_shipped=group.carrier not in CSV_LABEL_CARRIERS,
            cash_on_delivery=group.cash_on_delivery,
        )
        try:
            answers.requested[shipment_id] = (group.index, await warehouse.request_shipment(request))
        except WarehouseRejected as rejected:
            attempts = await _count_failure(ctx, shipment_id, str(rejected))
            answers.failed.append((group.index, shipment_id, attempts, str(rejected)))
        except TransientError as error:
            reason = f"{type(error).__name__}: {error}"[:500]
            attempts = await _count_failure(ctx, shipment_id, reason)
            if attempts < max_attempts:
                raise
            answers.failed.append((group.index, shipment_id, attempts, reason))
    return answers


def _request_ids(answers: _Answers) -> dict[UUID, str]:
    return {shipment_id: request_id for shipment_id, (_, request_id) in answers.requested.items()}


def _failed_ids(answers: _Answers) -> list[UUID]:
    return [shipment_id for _, shipment_id, _, _ in answers.failed]


def _announced(
    answers: _Answers, now_requested: Collection[UUID], *, order_id: UUID, shop_id: str, cause: Message
) -> list[Message]:
    """ShipmentRequested per request taken whose shipment is requested now, then ShipmentRequestFailed per request
    never taken, by delivery index."""
    announced: list[Message] = [
        ShipmentRequested(
            order_id=order_id, shop_id=shop_id, shipment_id=shipment_id, delivery_index=index,
            warehouse_request_id=request_id, **cause.caused(),
        )
        for shipment_id, (index, request_id) in sorted(answers.requested.items(), key=lambda item: item[1][0])
        # Not requested now: the parcel left (or was cancelled) while the warehouse was slow to answer; that news is out.
        if shipment_id in now_requested
    ]
    return announced + [
        ShipmentRequestFailed(
            order_id=order_id, shop_id=shop_id, shipment_id=shipment_id, delivery_index=index,
            attempts=attempts, reason=reason, **cause.caused(),
        )
        for index, shipment_id, attempts, reason in answers.failed
    ]


def _groups_to_request(rows: list[asyncpg.Record]) -> list[Group]:
    """The order's delivery groups with lines (as `store_shipments.request_basis` reads them); none for a cancelled
    order."""
    if any(row["cancelled"] for row in rows):
        return []
    return [
        Group(
            index=row["delivery_index"], carrier=row["carrier"], lines=list(zip(row["skus"], row["units"])),
            cash_on_delivery=row["cod_amount"], holds=list(zip(row["held_checks"], row["hold_reasons"])),
        )
        for row in rows
    ]


async def release_and_request(
    warehouse: Warehouse,
    ctx: MessageContext,
    *,
    order_id: UUID,
    shop_id: str,
    cause: Message,
    released: dict[int, str],
    how: str,
    max_attempts: int,
    finish: Finish | None = None,
) -> None:
    """After the caller lifted the holds of `released` groups (index → carrier) in its intent: announces each release
    and requests the groups' shipments if the order already reached the warehouse stage (a held shipment exists)."""
    async with ctx.intent() as conn:
        await store_holds.release_held_shipments(conn, order_id, sorted(released))
        waiting = any(row["status"] == "requesting" for row in await store_shipments.shipments_of_order(conn, order_id))
        still_held = len(await store_holds.held_deliveries(conn, order_id))

    async def announce(uow: UnitOfWork) -> None:
        for index, carrier in sorted(released.items()):
            uow.publish(
                topics.SHIPPING_EVENTS,
                ShipmentHoldReleased(
                    order_id=order_id, shop_id=shop_id, delivery_index=index, how=how, carrier=carrier,
                    still_held=still_held, **cause.caused(),
                ),
            )
        if finish:
            await finish(uow)

    if waiting:
        await request_shipments(
            warehouse, ctx, order_id=order_id, shop_id=shop_id, cause=cause, max_attempts=max_attempts, finish=announce,
            released=frozenset(released),
        )
        return
    async with ctx.unit_of_work() as uow:
        await announce(uow)


async def _count_failure(ctx: MessageContext, shipment_id, reason: str) -> int:
    async with ctx.intent() as conn:
        return await store_shipments.record_request_failure(conn, shipment_id, reason)
