"""Staff change how a delivery group ships (carrier, time slot): checked again, and a group a failed label check held
goes to the warehouse once the new method passes."""

from ordermesh_contracts import Address, ChangeDeliveryMethod, DeliveryGroup, OrderLine
from ordermesh_servicekit.commands import CommandRefused, accept
from ordermesh_servicekit.consuming import MessageContext, UnitOfWork

from . import store, store_holds, store_shipments
from .adapters.warehouse import Warehouse
from .checks import announce, check_groups
from .requesting import release_and_request

SERVICE = "shipping"
CHANGEABLE = ("held", "requesting", "request_failed")
"""Shipment states in which the group has not reached the warehouse (none yet is changeable too)."""


async def change_delivery_method(
    warehouse: Warehouse, command: ChangeDeliveryMethod, ctx: MessageContext, *, max_attempts: int
) -> None:
    """Sets the group's carrier and time slot once they pass the checks, then releases and requests a held group;
    refused with the reasons (nothing changes) for an unknown or departed group or a method that fails too."""
    if await ctx.already_processed():
        return
    order_id, index = command.order_id, command.delivery_index
    async with ctx.intent() as conn:
        delivery = await store_holds.lock_delivery(conn, order_id, index)
        if delivery is None or delivery["shop_id"] != command.shop_id:
            raise CommandRefused(f"order {order_id} of shop {command.shop_id} has no delivery {index}")
        if await store.is_cancelled(conn, order_id):
            raise CommandRefused(f"order {order_id} is cancelled")
        shipment = next((s for s in await store_shipments.shipments_of_order(conn, order_id) if s["delivery_index"] == index), None)
        if shipment is not None and shipment["status"] not in CHANGEABLE:
            raise CommandRefused(f"delivery {index} is {shipment['status']}: its carrier and time slot can't change any more")
        carrier = command.carrier or delivery["carrier"]
        time_slot = delivery["time_slot"] if command.time_slot is None else None if command.time_slot == "any" else command.time_slot
        if (carrier, time_slot) == (delivery["carrier"], delivery["time_slot"]):
            raise CommandRefused("the carrier and time slot are already that")
        lines = [row for row in await store.order_lines(conn, order_id) if row["delivery_index"] == index and row["quantity"] > 0]
        group = DeliveryGroup(
            address=Address.model_validate_json(delivery["address"]), requested_date=delivery["requested_date"],
            time_slot=time_slot, carrier=carrier,
            lines=[
                OrderLine(sku=row["sku"], name=row["name"], unit_price=row["unit_price"], quantity=row["quantity"], tax_rate_percent=10)
                for row in lines
            ],
        )
        results, holds = await check_groups(
            conn, order_id=order_id, shop_id=command.shop_id, now=command.occurred_at, groups={index: group},
            cash_on_delivery=delivery["payment_method"] == "cash_on_delivery",
        )
        if holds[index]:
            raise CommandRefused(*(f"with {carrier}: {reason}" for _, reason in holds[index]))
        was_held = bool(delivery["held_checks"])
        await store_holds.change_method(conn, order_id, index, carrier, time_slot)
        await store_holds.set_holds(conn, order_id, holds)

    async def finish(uow: UnitOfWork) -> None:
        announce(uow, results, order_id=order_id, shop_id=command.shop_id, cause=command.caused())
        accept(uow, command, SERVICE, details={"carrier": carrier, "time_slot": time_slot, "released": was_held})

    if was_held:
        await release_and_request(
            warehouse, ctx, order_id=order_id, shop_id=command.shop_id, cause=command, released={index: carrier},
            how="method_changed", max_attempts=max_attempts, finish=finish,
        )
        return
    async with ctx.unit_of_work() as uow:
        await finish(uow)
