"""Staff commands of the shipping service: stock imports, label exports, tracking imports and shop settings."""

import base64
import json
from dataclasses import replace

from ordermesh_contracts import ExportLabels, ImportStock, ImportTrackingCsv, ItemResult, SetShopShipping, ShippedLine
from ordermesh_servicekit.commands import CommandRefused, accept
from ordermesh_servicekit.consuming import MessageContext

from . import store, store_shipments, store_stock
from .allocating import allocate_waiting
from .domain.b2_cloud import B2Label, LabelEncodingError, Party, consignee_from, item_name, strictest_cool_type, write_b2_csv
from .domain.delivery_dates import earliest_ship_date
from .domain.parcels import ParcelRefused, unshipped
from .domain.shop_settings import settings_columns, settings_problems
from .domain.stock_import import StockLine, parse_stock_csv, validate_stock_lines
from .domain.tracking import TrackingOutcome, parse_issued_labels, plan_tracking
from .shipping_out import ship

SERVICE = "shipping"


class ShippingCommands:
    """Handlers of `shipping.commands.v1`."""

    async def import_stock(self, command: ImportStock, ctx: MessageContext) -> None:
        """Sets stock levels, all or nothing, then allocates orders waiting for the stock that arrived."""
        if command.csv is not None and command.lines:
            raise CommandRefused("give either lines or csv, not both")
        if command.csv is not None:
            lines, errors = parse_stock_csv(command.csv)
        else:
            lines = [StockLine(n, l.sku, l.warehouse, l.on_hand, l.cool_type) for n, l in enumerate(command.lines, start=1)]
            errors = []
        if not lines and not errors:
            raise CommandRefused("no stock lines to import")
        async with ctx.unit_of_work() as uow:
            skus = sorted({line.sku for line in lines})
            waiting_skus = await store_stock.demand_skus_of_waiting(uow.conn, skus)
            allocated = await store_stock.lock_stock_rows(uow.conn, sorted(set(skus) | set(waiting_skus)))
            known = await store.known_skus(uow.conn, skus)
            errors += validate_stock_lines(
                lines, known_skus=known, allocated=allocated, allow_new_skus=command.allow_new_skus
            )
            if errors:
                raise CommandRefused(*[str(error) for error in sorted(errors, key=lambda e: e.line)])
            await store_stock.set_stock(uow.conn, [(line.sku, line.warehouse, line.on_hand) for line in lines])
            await store.set_cool_types(uow.conn, {line.sku: line.cool_type for line in lines if line.cool_type})
            served = await allocate_waiting(uow, skus, command.event_id)
            accept(
                uow,
                command,
                SERVICE,
                results=[ItemResult(item=f"{line.sku}@{line.warehouse}", ok=True) for line in lines],
                details={
                    "lines": len(lines),
                    "allocated_orders": [{"order_id": str(order), "allocation": coverage} for order, coverage in served],
                },
            )

    async def export_labels(self, command: ExportLabels, ctx: MessageContext) -> None:
        """Writes the Yamato B2 Cloud CSV for the shipments; refuses unknown shipments and characters cp932 lacks."""
        async with ctx.unit_of_work() as uow:
            rows = await store_shipments.shipments_for_labels(uow.conn, command.shop_id, command.shipment_ids)
            if command.shipment_ids is not None:
                missing = {str(i) for i in command.shipment_ids} - {str(row["shipment_id"]) for row in rows}
                if missing:
                    raise CommandRefused(*[f"unknown shipment {shipment} of shop {command.shop_id}" for shipment in sorted(missing)])
                cancelled = sorted(str(row["shipment_id"]) for row in rows if row["status"] == "cancelled")
                if cancelled:
                    raise CommandRefused(*[f"shipment {shipment} is cancelled" for shipment in cancelled])
            if not rows:
                raise CommandRefused("no requested Yamato shipments to label")
            calendar = await store.shop_calendar(uow.conn, command.shop_id)
            shipper = await self._shipper(uow.conn, command.shop_id)
            cool = await store.cool_types(uow.conn, sorted({sku for row in rows for sku in row["skus"]}))
            ship_date = earliest_ship_date(calendar, command.occurred_at)
            labels = [
                B2Label(
                    management_number=str(row["label_no"]),
                    ship_date=ship_date,
                    consignee=consignee_from(json.loads(row["address"])),
                    shipper=shipper,
                    item_name=item_name(list(row["names"] or [])),
                    cool_type=strictest_cool_type([cool.get(sku, "normal") for sku in row["skus"]]),
                    delivery_date=row["requested_date"],
                    time_slot=row["time_slot"],
                    cod_amount=row["cod_amount"],
                )
                for row in rows
            ]
            try:
                content = write_b2_csv(labels)
            except LabelEncodingError as error:
                raise CommandRefused(*error.problems) from None
            accept(
                uow,
                command,
                SERVICE,
                results=[ItemResult(item=str(row["shipment_id"]), ok=True) for row in rows],
                details={
                    "format": "yamato_b2_cloud",
                    "encoding": "cp932",
                    "filename": f"b2-{command.shop_id}-{command.occurred_at:%Y%m%d%H%M%S}.csv",
                    "content_base64": base64.b64encode(content).decode("ascii"),
                    "shipments": len(labels),
                },
            )

    async def _shipper(self, conn, shop_id: str) -> Party:
        row = await store.shop(conn, shop_id)
        if row is not None and row["shipper"]:
            data = json.loads(row["shipper"])
            return Party(**{key: data.get(key) or "" for key in ("name", "phone", "postal_code", "address", "building")})
        return Party(name=shop_id, phone="", postal_code="", address="")

    async def import_tracking_csv(self, command: ImportTrackingCsv, ctx: MessageContext) -> None:
        """Ships each shipment whose line is good; every other line is answered with its reason."""
        labels, unreadable = parse_issued_labels(command.csv)
        async with ctx.unit_of_work() as uow:
            numbers = await store_shipments.shop_label_numbers(uow.conn, command.shop_id, [label.management_number for label in labels])
            labels = [replace(label, management_number=numbers.get(label.management_number, label.management_number)) for label in labels]
            known = set(numbers.values())
            owners = await store_shipments.tracking_owners(uow.conn, [label.tracking_number for label in labels])
            outcomes = plan_tracking(labels, known, owners)
            final: list[TrackingOutcome] = list(unreadable)
            for outcome in outcomes:
                if outcome.ok:
                    outcome = await self._ship_from_file(uow, command, outcome)
                final.append(outcome)
            final.sort(key=lambda outcome: outcome.line)
            accept(
                uow,
                command,
                SERVICE,
                results=[
                    ItemResult(item=f"line {o.line}: {o.management_number} {o.tracking_number}".strip(), ok=o.ok, reason=o.reason)
                    for o in final
                ],
                details={"applied": sum(o.ok for o in final), "rejected": sum(not o.ok for o in final)},
            )

    async def _ship_from_file(self, uow, command: ImportTrackingCsv, outcome: TrackingOutcome) -> TrackingOutcome:
        """One line ships what is left of its shipment as one parcel with the line's tracking number."""
        shipment = await store_shipments.lock_shipment_by_label_no(uow.conn, int(outcome.management_number))
        if await store_shipments.parcel_owner(uow.conn, outcome.tracking_number) == shipment["shipment_id"]:
            return replace(outcome, reason="already shipped with this number")
        if shipment["status"] in ("shipped", "delivered"):
            return replace(outcome, ok=False, reason=f"already shipped with tracking number {shipment['tracking_number']}")
        group = {
            line["sku"]: line["quantity"]
            for line in await store.order_lines(uow.conn, shipment["order_id"])
            if line["delivery_index"] == shipment["delivery_index"]
        }
        left = unshipped(group, await store_shipments.shipment_shipped_units(uow.conn, shipment["shipment_id"]))
        try:
            await ship(
                uow,
                shipment,
                carrier=command.carrier,
                tracking_number=outcome.tracking_number,
                shipped_at=command.occurred_at,
                lines=[ShippedLine(sku=sku, quantity=units) for sku, units in sorted(left.items())],
                correlation_id=command.correlation_id,
                causation_id=command.event_id,
            )
        except ParcelRefused as refused:
            return replace(outcome, ok=False, reason=str(refused))
        return outcome

    async def set_shop_shipping(self, command: SetShopShipping, ctx: MessageContext) -> None:
        """Sets the shop's calendar, warehouse prefecture and shipper block; refused with every reason."""
        async with ctx.unit_of_work() as uow:
            current = await store.shop_calendar(uow.conn, command.shop_id)
            problems = settings_problems(
                time_zone=command.time_zone,
                closed_weekdays=command.closed_weekdays,
                current_closed_weekdays=current.closed_weekdays,
            )
            if problems:
                raise CommandRefused(*problems)
            columns = settings_columns(
                time_zone=command.time_zone,
                cutoff=command.cutoff,
                closed_weekdays=command.closed_weekdays,
                closures=command.closures,
                warehouse_prefecture=command.warehouse_prefecture,
                shipper_json=command.shipper.model_dump_json() if command.shipper is not None else None,
            )
            await store.save_shop(uow.conn, command.shop_id, columns)
            calendar = await store.shop_calendar(uow.conn, command.shop_id)
            accept(
                uow,
                command,
                SERVICE,
                details={"changed": sorted(columns), **calendar.as_settings()},
            )
