"""The warehouse adapter's cancel against the sandbox warehouse app itself (run in process, lifespan included)."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from ordermesh_devstack.sandboxes.warehouse import create_app
from ordermesh_shipping.adapters.warehouse import (
    SandboxWarehouse,
    ShipmentRequest,
    WarehouseRejected,
)


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxWarehouse]:
    app = create_app(secret="s3cret", ship_delay_s=0.05, callback_timeout_s=0.2)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://warehouse") as client:
            yield SandboxWarehouse(client, "http://127.0.0.1:9/callbacks/warehouse")


def request(shipment_id: str, *, report_shipped: bool) -> ShipmentRequest:
    return ShipmentRequest(
        idempotency_key=shipment_id, shipment_id=shipment_id, order_id="o-1", carrier="yamato",
        lines=[{"sku": "A", "quantity": 1}], report_shipped=report_shipped,
    )


async def test_an_unshipped_request_is_cancelled_and_cancelling_it_again_is_harmless(sandbox) -> None:
    request_id = await sandbox.request_shipment(request("s-1", report_shipped=False))
    await sandbox.cancel_shipment(request_id)
    await sandbox.cancel_shipment(request_id)


async def test_a_request_that_already_shipped_is_refused_with_the_warehouses_409(sandbox) -> None:
    request_id = await sandbox.request_shipment(request("s-2", report_shipped=True))
    await asyncio.sleep(0.2)
    with pytest.raises(WarehouseRejected, match="409.*already_shipped"):
        await sandbox.cancel_shipment(request_id)


async def test_a_request_the_warehouse_does_not_know_is_nothing_to_cancel(sandbox) -> None:
    assert await sandbox.cancel_shipment("wr_unknown") is None
