"""The warehouse adapter's cancel against the sandbox warehouse app itself (served in process over HTTP)."""

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from ordermesh_devstack.sandboxes.warehouse import create_app
from ordermesh_servicekit.consuming import TransientError
from ordermesh_servicekit.outside import OutsideCalls
from ordermesh_servicekit.json_http import JsonHttp
from ordermesh_shipping.adapters.warehouse import (
    SandboxWarehouse,
    ShipmentRequest,
    WarehouseRejected,
)


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxWarehouse]:
    app = create_app(secret="s3cret", ship_delay_s=0.05, callback_timeout_s=0.2)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    http = JsonHttp(f"http://127.0.0.1:{sock.getsockname()[1]}", calls=OutsideCalls(), target="warehouse", timeout_seconds=10)
    try:
        yield SandboxWarehouse(http, "http://127.0.0.1:9/callbacks/warehouse")
    finally:
        await http.aclose()
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


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


async def test_an_unreachable_warehouse_is_a_transient_error_to_retry() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    http = JsonHttp(f"http://127.0.0.1:{port}", calls=OutsideCalls(), target="warehouse", timeout_seconds=10)
    try:
        with pytest.raises(TransientError):
            await SandboxWarehouse(http, "http://127.0.0.1:9/callbacks/warehouse").request_shipment(
                request("s-3", report_shipped=True)
            )
    finally:
        await http.aclose()
