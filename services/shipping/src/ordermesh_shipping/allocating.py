"""Allocation steps shared by handlers: allocate one order, and top up orders waiting for stock (oldest first)."""

from collections import Counter
from datetime import datetime
from uuid import UUID

from ordermesh_contracts import ShippedLine, StockAllocated, topics
from ordermesh_servicekit.consuming import PermanentError, UnitOfWork

from . import store_stock
from .batch_orders import BatchOrders
from .domain.allocation import plan_top_up
from .store_batch import NewAllocation


async def allocate_order(
    uow: UnitOfWork,
    order_id: UUID,
    *,
    requested_at: datetime,
    correlation_id: UUID,
    causation_id: UUID,
    publish_unchanged: bool = True,
    batch: BatchOrders | None = None,
) -> str | None:
    """Sets aside what stock allows for the order (on top of what it has) and publishes StockAllocated.

    The stock rows are locked in sku order first, so two orders for the last unit get it one after the
    other: exactly one of them. A cancelled order gets nothing (its cancellation locks the same allocation
    request first; whether it was cancelled is read after that lock). Returns the coverage, or None when nothing
    changed and nothing was published.

    An order never allocated before (no allocation request to lock) holds nothing (only allocating sets stock aside
    for an order, and it records the request in the same statement), so only an order allocated before reads what it
    holds and whether it was cancelled. The statement that saves the allocation reads again, after every lock, whether
    the order was cancelled, and then saves nothing.

    In a `batch`, an order it can allocate in memory (see `BatchOrders`) is decided on the stock its preload locked
    and saved with the batch at its end (which reads whether the order was cancelled, after those locks, and undoes
    the batch if so); any other settles the batch first and goes as one at a time.
    """
    basis = batch.allocation_basis(order_id) if batch is not None else None
    if basis is not None:
        plan = plan_top_up(basis.demand, {}, basis.available)
        batch.allocate(NewAllocation(order_id, plan.quantities, basis.shop_id, requested_at, plan.coverage, correlation_id))
        _publish_allocated(uow, order_id, basis.shop_id, plan.coverage, plan.quantities, correlation_id, causation_id)
        return plan.coverage
    if batch is not None:
        await batch.settle(uow.conn)
    per_sku = await store_stock.lock_demand_and_stock(uow.conn, order_id)
    if not per_sku:
        raise PermanentError(f"no lines known for order {order_id}")
    requested_before = per_sku[0]["requested_at"]
    cancelled, already = await store_stock.allocation_of(uow.conn, order_id) if requested_before else (False, {})
    if cancelled:
        return None
    demand = {row["sku"]: row["demand"] for row in per_sku}
    available = {row["sku"]: row["available"] for row in per_sku if row["available"] is not None}
    plan = plan_top_up(demand, already, available)
    if not plan.quantities and not publish_unchanged:
        return None
    shop_id = per_sku[0]["shop_id"]
    if not await store_stock.save_allocation(
        uow.conn, order_id, plan.quantities, shop_id=shop_id, requested_at=requested_before or requested_at,
        coverage=plan.coverage, correlation_id=correlation_id,
    ):
        return None
    total = Counter(already) + Counter(plan.quantities)
    _publish_allocated(uow, order_id, shop_id, plan.coverage, total, correlation_id, causation_id)
    return plan.coverage


def _publish_allocated(
    uow: UnitOfWork, order_id: UUID, shop_id: str, coverage: str, total: dict[str, int], correlation_id: UUID,
    causation_id: UUID,
) -> None:
    uow.publish(
        topics.SHIPPING_EVENTS,
        StockAllocated(
            order_id=order_id,
            shop_id=shop_id,
            allocation=coverage,
            lines=[ShippedLine(sku=sku, quantity=qty) for sku, qty in sorted(total.items())],
            correlation_id=correlation_id,
            causation_id=causation_id,
        ),
    )


async def allocate_waiting(uow: UnitOfWork, skus: list[str], causation_id: UUID) -> list[tuple[UUID, str]]:
    """Gives newly arrived stock to orders waiting for it, oldest first; returns (order, coverage) of each served."""
    served = []
    for waiting in await store_stock.waiting_orders(uow.conn, skus):
        coverage = await allocate_order(
            uow,
            waiting["order_id"],
            requested_at=waiting["requested_at"],
            correlation_id=waiting["correlation_id"],
            causation_id=causation_id,
            publish_unchanged=False,
        )
        if coverage is not None:
            served.append((waiting["order_id"], coverage))
    return served
