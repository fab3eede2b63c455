"""One function per event the orders service consumes: decode (done) → domain → store."""

from functools import partial
from uuid import UUID

import asyncpg

from ordermesh_contracts import (
    CreditCheckApproved,
    CreditCheckPending,
    CreditCheckRejected,
    DeliveryDateChecked,
    LabelCheckFailed,
    MailFailed,
    MailNotApplicable,
    MailSent,
    OrderMessage,
    OrderRejected,
    OrderShippingCancelled,
    PaymentAmountChanged,
    PaymentAmountChangeFailed,
    PaymentAuthorizationFailed,
    PaymentAuthorized,
    PaymentCancellationFailed,
    PaymentCancelled,
    PaymentCaptured,
    PaymentCaptureFailed,
    PaymentMethod,
    PaymentOverdue,
    PaymentReauthorizationNeeded,
    PaymentReceived,
    PaymentRefunded,
    PaymentRequested,
    PaymentVoided,
    PointsAccrued,
    PointsConfirmed,
    PointsRecomputed,
    PointsRedeemed,
    PointsRedemptionFailed,
    PointsReversed,
    ShipmentCancelFailed,
    ShipmentDelivered,
    ShipmentRequested,
    ShipmentRequestFailed,
    ShipmentShipped,
    ShipmentHeld,
    ShipmentHoldReleased,
    ShippingEditApplied,
    ShippingEditRefused,
    ShopOrderAccepted,
    ShopOrderShipped,
    ShopOrderSubmitted,
    Stage,
    StockAllocated,
    order_id_for,
    topics,
)
from ordermesh_servicekit.consuming import MessageContext, PermanentError, UnitOfWork
from ordermesh_servicekit.unit_of_work import ClaimingPreload, InboxClaim, write_batch

from . import store, store_edits
from .batch_intake import IntakeBatch
from .batch_orders import BatchOrders
from .adapters.postal import japan_post_lookup
from .cancelling import cancel_order
from .domain.edits import reversal_of
from .domain.acceptance import accept
from .domain.intake import address_flag, rejection_reasons
from .domain.staff import Refusal
from .domain.tasks import TASK_KINDS, tasks_opened_by
from .editing import commit_edit
from .settling import progress_entries, publish_progress, publish_transitions, recording, settle, writes_before_saving


async def on_shop_order_submitted(submitted: ShopOrderSubmitted, ctx: MessageContext) -> None:
    """Accepts a shop's order (once per shop, channel and order number) or rejects it with every reason."""
    async with ctx.unit_of_work() as uow:
        await take_in(uow, submitted, ctx)


async def take_in(uow: UnitOfWork, submitted: ShopOrderSubmitted, ctx: MessageContext) -> list[str]:
    """The intake of one order in the caller's unit of work; returns the rejection reasons (empty when accepted
    or already known)."""
    if reasons := rejection_reasons(submitted):
        uow.publish(
            topics.SHOP_UPDATES,
            OrderRejected(
                shop_id=submitted.shop_id,
                channel=submitted.channel.value,
                external_order_no=submitted.external_order_no,
                reasons=reasons,
                **submitted.caused(),
            ),
            key=submitted.external_order_no,
        )
        return reasons
    batch: IntakeBatch | None = ctx.preloaded
    key = (submitted.shop_id, submitted.customer.customer_id)
    basis = (batch.basis(*key) if batch is not None else None) or await store.intake_basis(uow.conn, *key)
    acceptance = accept(
        submitted,
        address=address_flag(submitted, japan_post_lookup),
        watch_listed=basis.watch_listed,
        rule_set=basis.rule_set,
        status_groups=basis.status_groups,
    )
    accepted = acceptance.accepted
    new = store.NewOrder(acceptance, submitted.event_id, submitted.billing_address)
    taken = batch.insert_later(new) if batch is not None else bool(await store.insert_accepted_orders(uow.conn, [new]))
    if not taken:
        ctx.log.info("shop order already known; ignoring the repeat")
        return []
    uow.publish(topics.ORDERS_EVENTS, accepted)
    uow.publish(
        topics.SHOP_UPDATES,
        ShopOrderAccepted(
            order_id=accepted.order_id,
            shop_id=submitted.shop_id,
            channel=submitted.channel,
            external_order_no=submitted.external_order_no,
            correlation_id=submitted.correlation_id,
            causation_id=accepted.event_id,
        ),
    )
    publish_transitions(uow, accepted.order_id, submitted.shop_id, submitted.external_order_no, accepted, acceptance.progress)
    return []


async def read_intake_batch(
    conn: asyncpg.Connection, submitted: list[ShopOrderSubmitted], claim: InboxClaim | None = None
) -> IntakeBatch:
    """The preload of the intake's subscription: what decides each order of a batch (its shop's watch list entry for
    its customer, the shop's rules and status groups, by shop and customer) and which of its orders are known already.
    The intake writes none of the former, so it stays true while the batch's orders are taken in (`take_in` finds it
    in `ctx.preloaded`); the accepted orders are inserted together by the batch's `write` (see `IntakeBatch`).
    With `claim`, the batch's inbox rows are written with the first read (see `InboxClaim`)."""
    pairs = list({(order.shop_id, order.customer.customer_id) for order in submitted})
    bases = await store.intake_bases(conn, pairs, claim)
    ids = list({order_id_for(order.shop_id, order.channel.value, order.external_order_no) for order in submitted})
    return IntakeBatch(bases, await store.known_orders(conn, ids))



INTAKE_BATCH = {"preload": ClaimingPreload(read_intake_batch), "finish": write_batch}
"""How the intake's subscription reads and writes its batches' orders (`Subscription(..., **INTAKE_BATCH)`)."""


async def lock_batch_orders(
    conn: asyncpg.Connection, events: list[OrderMessage], claim: InboxClaim | None = None
) -> BatchOrders:
    """The preload of the flag events' subscriptions: every order a batch's events are about, locked and read in one
    statement (in order of id), with `claim` the batch's inbox rows written in it too (see `InboxClaim`). The batch's
    handlers find them in `ctx.preloaded` (see `BatchOrders`), and leave there the saves its `write` makes
    together at the batch's end.

    No handler of these subscriptions writes an order other than its own event's: the flag step with what it keeps
    (`_paid`, `_parcel`), `settle` with the rules it runs, and every `then=` step (`_cancel_when_the_shop_asks`,
    `_reverse_what_the_warehouse_refused`, `_close_label_tasks`) write `event.order_id` alone. A handler that writes
    another order must first take that order from the batch (`ctx.preloaded.take(conn, other_id, ...)`), or its event
    must not be batched."""
    return BatchOrders(await store.lock_orders(conn, list({event.order_id for event in events}), claim))



BATCH_ORDERS = {"preload": ClaimingPreload(lock_batch_orders), "finish": write_batch}
"""How the flag events' subscriptions read and write their batches' orders (`Subscription(..., **BATCH_ORDERS)`)."""


def _flag_handler(flags_of, then=None, keeps=None, announce=None):
    """A handler that records the flags `flags_of(event)` returns and advances the order, saving with it what
    `keeps(event)` returns (`store.Kept`); `announce(uow, event, order)` publishes after, and `then(uow, event, order)`,
    a step that writes, runs after, in the same unit of work. In a batch, the order is as the batch holds it (see
    `BatchOrders`), and its save is left for the batch's end unless a `then` step follows it."""

    async def handle(event: OrderMessage, ctx: MessageContext) -> None:
        async with ctx.unit_of_work() as uow:
            batch: BatchOrders | None = ctx.preloaded
            changes = flags_of(event)
            kinds = tasks_opened_by(changes)
            kept = keeps(event) if keeps is not None else None

            def writes_first(order: store.StoredOrder) -> bool:
                return bool(kinds) or then is not None or writes_before_saving(order)

            order = await batch.take(uow.conn, event.order_id, writes_first=writes_first) if batch is not None else None
            if order is None:
                order = await store.lock_order(uow.conn, event.order_id)
            if order is None:
                raise PermanentError(f"no order {event.order_id}")
            opened = await open_tasks(uow, order.order_id, kinds, actor=_owner(event), cause_id=event.event_id)
            if batch is not None and then is None:
                save = batch.saving(order, give_back=not writes_first(order), kept=kept)
            else:
                save = partial(store.save_state, kept=kept)
            order, progress = await settle(
                uow, order.order_id, recording(changes), cause_id=event.event_id, locked=None if opened else order,
                history=lambda progress: [(_owner(event), event.type, {"flags": changes}), *progress_entries(progress)],
                save=save,
            )
            publish_transitions(uow, order.order_id, order.shop_id, order.external_order_no, event, progress)
            if announce is not None:
                announce(uow, event, order)
            if then is not None:
                await then(uow, event, order)

    return handle


async def _reverse_what_the_warehouse_refused(uow: UnitOfWork, refused: ShippingEditRefused, _: store.StoredOrder) -> None:
    """The warehouse had already picked or shipped the delivery an edit changed: that delivery's part of the edit is
    reversed by one more `OrderEdited` putting its lines back, so money and points follow what actually ships; the
    task stays open for staff."""
    order = await store.lock_order(uow.conn, refused.order_id)
    if order.state.stage is Stage.CANCELLED:
        return
    before = await store_edits.deliveries_before_edit(uow.conn, order.order_id, refused.edit_no)
    current, paid, edit_count = await store_edits.edit_basis(uow.conn, order.order_id)
    plan = reversal_of(current.deliveries, before, refused.delivery_index, current.charges) if before else None
    if plan is None:
        return
    await commit_edit(
        uow, order, current, paid, edit_count + 1, plan, refused, actor="auto:warehouse-refused",
        adjust_stock=True, notify_customer=False,
        reason=f"edit {refused.edit_no} reversed for delivery {refused.delivery_index}: {refused.reason}",
    )


async def _cancel_when_the_shop_asks(uow: UnitOfWork, overdue: PaymentOverdue, _: store.StoredOrder) -> None:
    """An overdue prepaid order of a shop that cancels them automatically is cancelled: stock released, the payment
    request withdrawn, the customer told (seed 000's choices, made by the shop's setting)."""
    if not overdue.cancel_order:
        return
    order = await store.lock_order(uow.conn, overdue.order_id)
    try:
        await cancel_order(
            uow, order, overdue, actor="auto:payment-overdue",
            reason=f"payment {overdue.reference} not received by {overdue.due_date.isoformat()}",
            restore_stock=True, cancel_payment=True, notify_customer=True,
        )
    except Refusal as refusal:
        await store.add_history(
            uow.conn, order.order_id, [("automatic cancel skipped", {"reasons": refusal.reasons})],
            actor="payments", cause_id=overdue.event_id,
        )


async def open_tasks(
    uow: UnitOfWork, order_id, kinds: list[str], *, actor: str, cause_id, notes: dict[str, str] | None = None
) -> list[str]:
    """Opens tasks of these kinds (one open task per kind) and records them in the history; returns those opened.
    A task's note is its kind's title unless `notes` gives one."""
    if not kinds:
        return []
    notes = notes or {}
    opened = await store.open_tasks(
        uow.conn,
        order_id,
        [(kind, notes.get(kind, TASK_KINDS[kind].title), TASK_KINDS[kind].blocking) for kind in kinds],
        opened_by=actor,
    )
    if opened:
        await store.add_history(
            uow.conn, order_id, [("task opened", {"task_id": i, "kind": k}) for i, k in opened], actor=actor, cause_id=cause_id
        )
    return [kind for _, kind in opened]


def _parcel(shipped: ShipmentShipped) -> store.Kept:
    """What the parcel carried (edits are checked against it)."""
    lines = tuple((line.sku, line.quantity) for line in shipped.lines)
    return store.Kept(parcels=(store.Parcel(shipped.shipment_id, shipped.delivery_index, shipped.tracking_number, lines),))


def _tell_the_shop(uow: UnitOfWork, shipped: ShipmentShipped, order: store.StoredOrder) -> None:
    """Tells the shop the parcel's tracking number."""
    uow.publish(
        topics.SHOP_UPDATES,
        ShopOrderShipped(
            order_id=order.order_id,
            shop_id=order.shop_id,
            external_order_no=order.external_order_no,
            carrier=shipped.carrier,
            tracking_number=shipped.tracking_number,
            **shipped.caused(),
        ),
    )


def _paid(**amounts_of):
    """What the customer paid (edits compute the balance from it), from the event's amounts (see `store.Paid`)."""
    return lambda event: store.Kept(paid=store.Paid(**{name: amount(event) for name, amount in amounts_of.items()}))


def _owner(event: OrderMessage) -> str:
    return type(event).__module__.rsplit(".", 1)[-1]


def _mail_flag(event: MailSent | MailFailed | MailNotApplicable) -> dict[str, str]:
    status = {"MailSent": "sent", "MailFailed": "failed", "MailNotApplicable": "not_applicable"}[event.type]
    return {f"mail_{event.mail_kind.value}": status}


def _payment_received(event: PaymentReceived) -> dict[str, str]:
    if event.method is PaymentMethod.CASH_ON_DELIVERY:
        return {"cod_collection": "collected" if event.balance <= 0 else "short"}
    if event.balance > 0:
        return {"prepaid_payment": "under_paid"}
    return {"prepaid_payment": "received", **({"refund": "owed"} if event.balance < 0 else {})}


def _payment_cancelled(event: PaymentCancelled) -> dict[str, str]:
    return {"payment_cancellation": event.outcome, **({"refund": "owed"} if event.refund_owed > 0 else {})}


def _shipping_cancelled(event: OrderShippingCancelled) -> dict[str, str]:
    return {"shipping_cancellation": "done", **({"stock_release": "released"} if event.stock_released else {})}


def _shipment_cancel_failed(event: ShipmentCancelFailed) -> dict[str, str]:
    return {"shipping_cancellation": "failed", **({"stock_release": "released"} if event.stock_released else {})}


def _points_reversed(event: PointsReversed) -> dict[str, str]:
    return {"points": "reversed", **({"points_debt": "owed"} if event.debt > 0 else {})}


def _amount_changed(event: PaymentAmountChanged) -> dict[str, str]:
    flags = {"amount_change": "changed"}
    if event.balance_due > 0:
        flags["balance"] = "due"
    if event.refunded > 0:
        flags["refund"] = "done"
    return flags


def _shipping_edit_applied(event: ShippingEditApplied) -> dict[str, str]:
    return {"shipping_edit": "applied", **({"allocation": event.allocation} if event.stock_adjusted else {})}


def _hold_released(event: ShipmentHoldReleased) -> dict[str, str]:
    flags = {"shipment_hold": "held" if event.still_held else "released"}
    return flags | ({"label_check": "resolved"} if event.how == "method_changed" else {})


async def _close_label_tasks(uow: UnitOfWork, released: ShipmentHoldReleased, order: store.StoredOrder) -> None:
    """A new carrier or time slot passed the label check: the check's task is done, and the order moves on if the
    task was all that kept it in review."""
    if released.how != "method_changed":
        return
    await store.close_tasks_of_kind(uow.conn, order.order_id, ["label_check_failed"], closed_by="shipping")
    order, progress = await settle(uow, order.order_id, recording({}), cause_id=released.event_id)
    await publish_progress(uow, order.order_id, order.shop_id, order.external_order_no, released, progress)


def _points_recomputed(event: PointsRecomputed) -> dict[str, str]:
    flags = {"points_redemption": "reserved" if event.points_used > 0 else "not_applicable"}
    return flags | ({"points_debt": "owed"} if event.debt > 0 else {})


FLAG_HANDLERS = {
    PaymentAuthorized: _flag_handler(lambda e: {"card_authorization": "authorized"}),
    PaymentAuthorizationFailed: _flag_handler(lambda e: {"card_authorization": "error"}),
    PaymentCaptured: _flag_handler(lambda e: {"capture": "done"}, keeps=_paid(captured=lambda e: e.amount)),
    PaymentCaptureFailed: _flag_handler(lambda e: {"capture": "error"}),
    StockAllocated: _flag_handler(lambda e: {"allocation": e.allocation}),
    ShipmentRequested: _flag_handler(lambda e: {"shipping": "requested"}),
    ShipmentShipped: _flag_handler(
        lambda e: {"shipping": "shipped" if e.all_shipped else "partly_shipped"}, keeps=_parcel, announce=_tell_the_shop
    ),
    PaymentRequested: _flag_handler(lambda e: {"prepaid_payment": "requested"}),
    PaymentReceived: _flag_handler(_payment_received, keeps=_paid(received_total=lambda e: e.received_total)),
    PaymentOverdue: _flag_handler(lambda e: {"prepaid_payment": "overdue"}, then=_cancel_when_the_shop_asks),
    PaymentRefunded: _flag_handler(lambda e: {"refund": "done"}, keeps=_paid(refunded_total=lambda e: e.refunded_total)),
    PaymentVoided: _flag_handler(lambda e: {"card_authorization": "cancelled"}),
    PaymentReauthorizationNeeded: _flag_handler(lambda e: {"authorization_expiry": "soon"}),
    DeliveryDateChecked: _flag_handler(lambda e: {"delivery_date": e.result}),
    LabelCheckFailed: _flag_handler(lambda e: {"label_check": "relay_area" if e.kind == "relay_area" else "failed"}),
    ShipmentDelivered: _flag_handler(lambda e: {"delivery": "delivered" if e.all_delivered else "partly_delivered"}),
    ShipmentRequestFailed: _flag_handler(lambda e: {"shipment_request": "failed"}),
    PaymentCancelled: _flag_handler(_payment_cancelled),
    PaymentCancellationFailed: _flag_handler(lambda e: {"payment_cancellation": "failed"}),
    OrderShippingCancelled: _flag_handler(_shipping_cancelled),
    ShipmentCancelFailed: _flag_handler(_shipment_cancel_failed),
    PointsRedeemed: _flag_handler(lambda e: {"points_redemption": "reserved"}),
    PointsRedemptionFailed: _flag_handler(lambda e: {"points_redemption": "failed"}),
    PointsReversed: _flag_handler(_points_reversed),
    PointsAccrued: _flag_handler(lambda e: {"points": "provisional"}),
    PointsConfirmed: _flag_handler(lambda e: {"points": "confirmed"}),
    MailSent: _flag_handler(_mail_flag),
    MailFailed: _flag_handler(_mail_flag),
    MailNotApplicable: _flag_handler(_mail_flag),
    PaymentAmountChanged: _flag_handler(_amount_changed, keeps=_paid(refunded_more=lambda e: e.refunded or None)),
    PaymentAmountChangeFailed: _flag_handler(lambda e: {"amount_change": "failed"}),
    CreditCheckPending: _flag_handler(lambda e: {"credit_check": "pending"}),
    CreditCheckApproved: _flag_handler(lambda e: {"credit_check": "ok"}),
    CreditCheckRejected: _flag_handler(lambda e: {"credit_check": "error"}),
    ShippingEditApplied: _flag_handler(_shipping_edit_applied),
    ShippingEditRefused: _flag_handler(lambda e: {"shipping_edit": "refused"}, then=_reverse_what_the_warehouse_refused),
    PointsRecomputed: _flag_handler(_points_recomputed),
    ShipmentHeld: _flag_handler(lambda e: {"shipment_hold": "held"}),
    ShipmentHoldReleased: _flag_handler(_hold_released, then=_close_label_tasks),
}
"""Events of the other services, each turned into flag changes on the order."""
