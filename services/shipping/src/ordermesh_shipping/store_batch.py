"""SQL of the shipping service's batches: of orders events, the stock its allocations take, locked and read once, and
every acceptance and allocation its handlers decided; of warehouse reports, every parcel and delivery they recorded;
each written once at the batch's end with its outbox rows."""

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from ordermesh_servicekit.outbox import OutgoingMessage, outbox_rows
from ordermesh_servicekit.unit_of_work import InboxClaim, fetch_claiming

from .store import DEFAULT_WAREHOUSE
from .store_shipments import ParcelBooked


class Demand(NamedTuple):
    """What allocating an order reads: its units per sku, its shop, and when it first reached allocation (None if
    never: then it holds nothing)."""

    units: dict[str, int]
    shop_id: str | None
    requested_at: datetime | None


class StockView(NamedTuple):
    """The stock a batch's allocations take, locked: the demand of each order (those with lines or an allocation
    request) and the units available per sku (skus without a stock row absent)."""

    demand: dict[UUID, Demand]
    available: dict[str, int]


_LOCK_STOCK = """
    WITH demand AS (
        SELECT order_id, sku, sum(quantity)::bigint AS units, min(shop_id) AS shop_id
        FROM order_lines WHERE order_id = ANY($1::uuid[]) GROUP BY order_id, sku
    ), available AS MATERIALIZED (
        SELECT sku, on_hand - allocated AS units FROM stock
        WHERE warehouse = $3 AND (sku IN (SELECT sku FROM demand) OR sku = ANY($2::text[])) ORDER BY sku FOR UPDATE
    ), request AS MATERIALIZED (
        -- the count is a one-time filter, run before the requests are read: every stock row is locked first
        SELECT order_id, requested_at FROM allocation_requests
        WHERE order_id = ANY($1::uuid[]) AND (SELECT count(*) FROM available) >= 0 ORDER BY order_id FOR UPDATE
    )
    SELECT 'demand' AS kind, order_id, sku, units, shop_id, NULL::timestamptz AS requested_at FROM demand
    UNION ALL SELECT 'stock', NULL, sku, units, NULL, NULL FROM available
    UNION ALL SELECT 'request', order_id, NULL, NULL, NULL, requested_at FROM request
"""


async def lock_stock_of_orders(
    conn: asyncpg.Connection, order_ids: list[UUID], skus: list[str], claim: InboxClaim | None = None
) -> StockView:
    """What allocating these orders reads, in one statement: the stock rows of every sku they need and of `skus`
    (in sku order, so no deadlock), then their allocation requests (in order of id, after every stock row's lock, as
    one order's allocation, cancelling and editing take them). With `claim`, a batch's inbox rows are written in the
    same statement, before anything is locked (see `InboxClaim`)."""
    rows = await fetch_claiming(conn, claim, _LOCK_STOCK, order_ids, skus, DEFAULT_WAREHOUSE, present="kind")
    units: dict[UUID, dict[str, int]] = {}
    shops: dict[UUID, str] = {}
    requested: dict[UUID, datetime] = {}
    available: dict[str, int] = {}
    for row in rows:
        if row["kind"] == "demand":
            units.setdefault(row["order_id"], {})[row["sku"]] = row["units"]
            shops[row["order_id"]] = row["shop_id"]
        elif row["kind"] == "stock":
            available[row["sku"]] = row["units"]
        else:
            requested[row["order_id"]] = row["requested_at"]
    demand = {
        order_id: Demand(units.get(order_id, {}), shops.get(order_id), requested.get(order_id))
        for order_id in {*units, *requested}
    }
    return StockView(demand, available)


class AcceptedOrder(NamedTuple):
    """An accepted order as `save_batch` stores it."""

    order_id: UUID
    shop_id: str
    payment_method: str
    currency: str
    accepted_at: datetime
    groups: list[dict]
    """Its delivery groups, as `store.save_deliveries` takes them."""
    lines: list[tuple]
    """(delivery index, sku, quantity, carrier, name, unit price) of each line."""


class NewAllocation(NamedTuple):
    """Stock set aside for an order that holds none yet, and how much of it that covers, as
    `store_stock.save_allocation` records it."""

    order_id: UUID
    quantities: dict[str, int]
    shop_id: str
    requested_at: datetime
    coverage: str
    correlation_id: UUID


async def save_batch(
    conn: asyncpg.Connection, accepted: Sequence[AcceptedOrder], allocated: Sequence[NewAllocation],
    publish: Sequence[OutgoingMessage] = (),
) -> bool:
    """Stores accepted orders (each once: its delivery groups and lines; a repeat changes nothing but what holds a
    group) and new allocations (each order once: its allocations, the stock's allocated and its allocation request)
    with the outbox rows `publish`, in one statement; callers hold the stock rows' locks. Returns False, having written
    it all, if staff cancelled an order given an allocation (read by this statement, after the caller's locks): the
    caller must undo it."""
    groups = [
        {
            **group, "order_id": str(order.order_id), "shop_id": order.shop_id, "payment_method": order.payment_method,
            "currency": order.currency, "accepted_at": order.accepted_at.isoformat(),
        }
        for order in accepted
        for group in order.groups
    ]
    lines = [(order.order_id, order.shop_id, *line) for order in accepted for line in order.lines]
    taken = [(new.order_id, sku, new.quantities[sku]) for new in allocated for sku in sorted(new.quantities)]
    arguments = [
        json.dumps(groups, default=str),
        *(list(column) for column in (zip(*lines) if lines else ([],) * 8)),
        DEFAULT_WAREHOUSE,
        *(list(column) for column in (zip(*taken) if taken else ([],) * 3)),
        [new.order_id for new in allocated],
        [new.shop_id for new in allocated],
        [new.requested_at for new in allocated],
        [new.coverage for new in allocated],
        [new.correlation_id for new in allocated],
    ]
    published, published_arguments = outbox_rows(len(arguments) + 1, publish, "true") if publish else ("", [])
    return await conn.fetchval(
        f"""
        WITH deliveries_saved AS (
            INSERT INTO deliveries (order_id, delivery_index, shop_id, address, requested_date, time_slot, carrier,
                                    payment_method, cod_amount, currency, accepted_at, held_checks, hold_reasons)
            SELECT g.order_id, g.delivery_index, g.shop_id, g.address, g.requested_date, g.time_slot, g.carrier,
                   g.payment_method, g.cod_amount, g.currency, g.accepted_at, coalesce(g.held_checks, '{{}}'),
                   coalesce(g.hold_reasons, '{{}}')
            FROM jsonb_to_recordset($1::jsonb) AS g (order_id uuid, delivery_index integer, shop_id text, address jsonb,
                 requested_date date, time_slot text, carrier text, payment_method text, cod_amount bigint,
                 currency text, accepted_at timestamptz, held_checks text[], hold_reasons text[])
            ON CONFLICT (order_id, delivery_index)
                DO UPDATE SET held_checks = EXCLUDED.held_checks, hold_reasons = EXCLUDED.hold_reasons
        ), lines_saved AS (
            INSERT INTO order_lines (order_id, shop_id, delivery_index, sku, quantity, carrier, name, unit_price)
            SELECT line.* FROM unnest($2::uuid[], $3::text[], $4::int[], $5::text[], $6::int[], $7::text[], $8::text[],
                                      $9::bigint[])
                AS line (order_id, shop_id, delivery_index, sku, quantity, carrier, name, unit_price)
            ON CONFLICT (order_id, delivery_index, sku) DO UPDATE SET quantity = order_lines.quantity
        ), set_aside AS (
            INSERT INTO allocations (order_id, sku, warehouse, quantity)
            SELECT t.order_id, t.sku, $10, t.units FROM unnest($11::uuid[], $12::text[], $13::bigint[]) AS t (order_id, sku, units)
            ON CONFLICT (order_id, sku, warehouse) DO UPDATE SET quantity = allocations.quantity + EXCLUDED.quantity
        ), counted AS (
            UPDATE stock SET allocated = stock.allocated + taken.units
            FROM (SELECT t.sku, sum(t.units)::bigint AS units FROM unnest($12::text[], $13::bigint[]) AS t (sku, units)
                  GROUP BY t.sku) AS taken
            WHERE stock.sku = taken.sku AND stock.sku = ANY($12::text[]) AND stock.warehouse = $10
        ), requested AS (
            INSERT INTO allocation_requests (order_id, shop_id, requested_at, coverage, correlation_id)
            SELECT * FROM unnest($14::uuid[], $15::text[], $16::timestamptz[], $17::text[], $18::uuid[])
            ON CONFLICT (order_id) DO UPDATE SET coverage = EXCLUDED.coverage
        ){", " + published if published else ""}
        SELECT NOT EXISTS (SELECT FROM cancelled_orders WHERE order_id = ANY($14::uuid[]))
        """,
        *arguments,
        *published_arguments,
    )


_SHIPMENT_SAVED = ("status", "carrier", "tracking_number", "shipped_at", "delivered_at", "cash_collected")
"""What booking a parcel and recording a delivery change of a shipment."""


async def save_reports(
    conn: asyncpg.Connection, parcels: Sequence[ParcelBooked], shipments: Sequence[Mapping[str, Any]],
    publish: Sequence[OutgoingMessage] = (),
) -> None:
    """Stores booked parcels (each new, as `store_shipments.book_parcel` books it: its lines, its units out of stock
    on hand and `from_allocation` of them out of the allocation too, on hand never below what other orders hold) and
    shipments as the parcels and deliveries left them (each once: its status, carrier, first tracking number and
    time, delivery), with the outbox rows `publish`, in one statement; callers hold the shipments' locks."""
    lines = [(parcel, sku) for parcel in parcels for sku in sorted(parcel.units)]
    arguments = [
        [parcel.shipment_id for parcel in parcels],
        [parcel.tracking_number for parcel in parcels],
        [parcel.order_id for parcel in parcels],
        [parcel.carrier for parcel in parcels],
        [parcel.shipped_at for parcel in parcels],
        [parcel.shipment_id for parcel, _ in lines],
        [parcel.tracking_number for parcel, _ in lines],
        [sku for _, sku in lines],
        [parcel.units[sku] for parcel, sku in lines],
        [parcel.from_allocation.get(sku, 0) for parcel, sku in lines],
        DEFAULT_WAREHOUSE,
        [shipment["shipment_id"] for shipment in shipments],
        *([shipment[column] for shipment in shipments] for column in _SHIPMENT_SAVED),
    ]
    published, published_arguments = outbox_rows(len(arguments) + 1, publish, "true") if publish else ("", [])
    await conn.execute(
        f"""
        WITH parcel AS (
            INSERT INTO parcels (shipment_id, tracking_number, order_id, carrier, shipped_at)
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[])
        ), carried AS (
            INSERT INTO parcel_lines (shipment_id, tracking_number, sku, quantity)
            SELECT * FROM unnest($6::uuid[], $7::text[], $8::text[], $9::int[])
        ), taken AS (
            -- a sku's parcels together: on hand never below what other orders hold, as when each is taken in turn
            UPDATE stock SET on_hand = greatest(stock.on_hand - c.units, stock.allocated - c.from_allocation),
                   allocated = stock.allocated - c.from_allocation
            FROM (SELECT c.sku, sum(c.units) AS units, sum(c.from_allocation) AS from_allocation
                  FROM unnest($8::text[], $9::int[], $10::int[]) AS c (sku, units, from_allocation) GROUP BY c.sku) AS c
            WHERE stock.sku = c.sku AND stock.sku = ANY($8::text[]) AND stock.warehouse = $11
        ), saved AS (
            UPDATE shipments s SET status = x.status, carrier = x.carrier, tracking_number = x.tracking_number,
                   shipped_at = x.shipped_at, delivered_at = x.delivered_at, cash_collected = x.cash_collected
            FROM unnest($12::uuid[], $13::text[], $14::text[], $15::text[], $16::timestamptz[], $17::timestamptz[],
                        $18::bigint[]) AS x (shipment_id, status, carrier, tracking_number, shipped_at, delivered_at,
                                             cash_collected)
            WHERE s.shipment_id = x.shipment_id AND s.shipment_id = ANY($12::uuid[])
        ){", " + published if published else ""}
        SELECT 1
        """,
        *arguments,
        *published_arguments,
    )
