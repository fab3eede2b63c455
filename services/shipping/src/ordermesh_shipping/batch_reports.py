"""The shipments of a batch of warehouse reports: locked and read together once, and the parcels and deliveries its
handlers recorded saved together once, with the batch's outbox rows, when the batch's handlers are done (the preload
and finish of shipping's warehouse-callbacks subscription)."""

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from ordermesh_contracts import WarehouseDeliveryReported, WarehouseShipmentReported
from ordermesh_servicekit.outbox import OutgoingMessage
from ordermesh_servicekit.unit_of_work import InboxClaim

from . import store_batch, store_shipments
from .store import DEFAULT_WAREHOUSE
from .store_shipments import Delivered, ParcelBooked, ParcelFacts

Shipment = Mapping[str, Any]
"""A shipment's row (as read, or as a handler of the batch left it)."""


class BatchShipments:
    """Every shipment a batch's reports are about, as it stands in the batch's transaction (locked), what booking the
    first parcel reported for each order reads (`parcels`, by report) and what recording each reported delivery reads;
    and the parcels and shipments its handlers left to be written together.

    A handler takes its report's shipment (`take`) and gives it back as it leaves it (`give_back`, or `book` and
    `deliver`, which keep what they record for the batch's `write`), so the shipment's next report in the batch takes
    it from there. That is enough because no handler of this subscription writes a shipment other than its report's.

    What booking a parcel reads is about its order (its shipments, parcels and allocations) and its tracking number,
    and in this subscription only booking a parcel changes it (a delivery takes a shipment from shipped to delivered,
    which it counts alike); so it is preloaded for the order's first parcel report in the batch alone, and for none
    whose tracking number another report of the batch carries: every other parcel reads it when booked, once the
    batch's writes are made (`settle`). What recording a delivery reads is the order's shop and its other shipments
    not yet delivered, which only the batch's deliveries of the same order change: they are counted off."""

    def __init__(
        self, shipments: dict[UUID, Shipment], parcels: dict[UUID, ParcelFacts], delivering: dict[UUID, Delivered]
    ) -> None:
        self.parcels = parcels
        self._shipments = shipments
        self._delivering = delivering
        self._booked: list[ParcelBooked] = []
        self._saved: dict[UUID, Shipment] = {}
        self._delivered: dict[UUID, set[UUID]] = {}

    def take(self, shipment_id: UUID) -> Shipment | None:
        """The shipment as it stands, if the batch holds it (until it is given back); else None, for the caller to
        lock and read it (once the batch's writes are made)."""
        return self._shipments.pop(shipment_id, None)

    def give_back(self, shipment: Shipment) -> None:
        """Gives back a shipment taken, as it stands now (its row still locked)."""
        self._shipments[shipment["shipment_id"]] = shipment

    def book(self, shipment: Shipment, parcel: ParcelBooked, status: str) -> Shipment:
        """Keeps a parcel of the (taken) shipment for the batch's `write`, the shipment's status becoming `status` (the
        first parcel's tracking number and time stay the shipment's own); returns the shipment as the parcel leaves
        it, given back."""
        saved = {
            **dict(shipment), "status": status, "carrier": parcel.carrier,
            "tracking_number": shipment["tracking_number"] or parcel.tracking_number,
            "shipped_at": shipment["shipped_at"] or parcel.shipped_at,
        }
        self._booked.append(parcel)
        return self._keep(saved)

    def deliver(self, shipment: Shipment, delivered_at: datetime, cash_collected: int | None) -> Delivered | None:
        """Keeps the (taken) shipment's delivery for the batch's `write` and gives it back delivered; returns the
        order's shop and how many of its other shipments are still undelivered. None, and nothing kept, if the batch
        did not read them (the caller records the delivery itself, once the batch's writes are made)."""
        read = self._delivering.get(shipment["shipment_id"])
        if read is None:
            return None
        order_id = shipment["order_id"]
        delivered_before = self._delivered.setdefault(order_id, set())
        others = read.others_undelivered - len(delivered_before - {shipment["shipment_id"]})
        delivered_before.add(shipment["shipment_id"])
        self._keep({**dict(shipment), "status": "delivered", "delivered_at": delivered_at, "cash_collected": cash_collected})
        return Delivered(read.shop_id, others)

    async def settle(self, conn: asyncpg.Connection) -> None:
        """Writes what the batch's handlers left so far: the caller reads (or writes) the database itself."""
        await self._write(conn, ())

    async def write(self, conn: asyncpg.Connection, publish: Sequence[OutgoingMessage]) -> bool:
        """Writes every parcel and shipment the batch's handlers left, with the batch's outbox rows `publish`, in one
        statement; False, and nothing written, if nothing is left."""
        if not self._saved:
            return False
        await self._write(conn, publish)
        return True

    def _keep(self, saved: Shipment) -> Shipment:
        self._saved[saved["shipment_id"]] = saved
        self.give_back(saved)
        return saved

    async def _write(self, conn: asyncpg.Connection, publish: Sequence[OutgoingMessage]) -> None:
        booked, self._booked = self._booked, []
        saved, self._saved = list(self._saved.values()), {}
        if saved:
            await store_batch.save_reports(conn, booked, saved, publish)


async def lock_batch_shipments(
    conn: asyncpg.Connection, reports: list[WarehouseShipmentReported | WarehouseDeliveryReported],
    claim: InboxClaim | None = None,
) -> BatchShipments:
    """The preload of the warehouse callbacks' subscription: every shipment a batch's reports are about, locked and
    read in one statement (in order of id) with what recording each reported delivery reads, which writes the batch's
    inbox rows too when given their `claim`; then, in one more statement after those locks, what booking the first
    parcel reported for each order reads (of the reports to be processed, once the claim is read; see
    `BatchShipments`). The batch's handlers find it in `ctx.preloaded`."""
    shipments, delivering = await store_shipments.lock_shipments(
        conn, sorted({report.shipment_id for report in reports}), claim,
        delivering=sorted({report.shipment_id for report in reports if isinstance(report, WarehouseDeliveryReported)}),
    )
    processed = claim.fresh() if claim is not None else reports
    parcels = [report for report in processed if isinstance(report, WarehouseShipmentReported)]
    carried = Counter(report.tracking_number for report in parcels)
    orders: set[UUID] = set()
    first: list[tuple[UUID, asyncpg.Record, str]] = []
    for report in parcels:
        if report.order_id in orders:
            continue
        orders.add(report.order_id)
        shipment = shipments.get(report.shipment_id)
        if shipment is not None and shipment["order_id"] == report.order_id and carried[report.tracking_number] == 1:
            first.append((report.event_id, shipment, report.tracking_number))
    if not first:
        return BatchShipments(shipments, {}, delivering)
    facts = await store_shipments.parcels_facts(conn, [(shipment, number) for _, shipment, number in first], DEFAULT_WAREHOUSE)
    return BatchShipments(
        shipments, {event_id: facts[shipment["shipment_id"], number] for event_id, shipment, number in first}, delivering
    )

