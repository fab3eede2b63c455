"""The published AsyncAPI documents: current with the code, reproducible byte for byte, and complete enough for an
integrator to write any message from them alone (every channel read and written, real payloads and headers)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ordermesh_contracts import ShopOrderSubmitted, topics

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ["orders", "payments", "shipping", "points", "notify"]
COMMANDS = {"orders": topics.ORDERS_COMMANDS, "payments": topics.PAYMENTS_COMMANDS, "shipping": topics.SHIPPING_COMMANDS,
            "points": topics.POINTS_COMMANDS, "notify": topics.NOTIFY_COMMANDS}


def generate(service: str, out: Path) -> str:
    subprocess.run(
        [sys.executable, "-m", "ordermesh_servicekit.asyncapi", f"ordermesh_{service}.app:create_app", "--out", str(out)],
        check=True, capture_output=True, cwd=out.parent,
    )
    return out.read_text(encoding="utf-8")


def checked_in(service: str) -> dict:
    return json.loads((ROOT / "asyncapi" / f"{service}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("service", SERVICES)
def test_the_checked_in_document_is_byte_for_byte_what_a_fresh_process_generates_from_the_code(service, tmp_path):
    # the checked-in file came from another process (another hash seed): equal bytes mean the order is stable
    generated = generate(service, tmp_path / f"{service}.json")
    assert generated == (ROOT / "asyncapi" / f"{service}.json").read_text(encoding="utf-8"), (
        f"asyncapi/{service}.json is stale: run `make docs`"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_each_document_has_a_title_a_description_and_every_channel_read_and_written_with_its_dead_letters(service):
    document = checked_in(service)
    assert document["info"]["title"] == f"ordermesh {service} service" and len(document["info"]["description"]) > 80
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {COMMANDS[service], f"{COMMANDS[service]}.dlq", topics.OPS_REPLIES, f"{service}.events.v1"} <= addresses
    reads = {document["channels"][op["channel"]["$ref"].rsplit("/", 1)[1]]["address"]
             for op in document["operations"].values() if op["action"] == "receive"}
    assert all(f"{topic}.dlq" in addresses for topic in reads)
    assert list(document["channels"]) == sorted(document["channels"])


@pytest.mark.parametrize("service", SERVICES)
def test_no_message_of_any_channel_has_an_empty_payload_or_lacks_headers(service):
    document = checked_in(service)
    schemas, messages = document["components"]["schemas"], document["components"]["messages"]
    assert "EmptyPayload" not in schemas
    for name, channel in document["channels"].items():
        assert channel["messages"], f"{name} has no message"
        for ref in channel["messages"].values():
            message = messages[ref["$ref"].rsplit("/", 1)[1]]
            payload = schemas[message["payload"]["$ref"].rsplit("/", 1)[1]]
            assert payload.get("properties") or payload.get("type") == "string", f"{name}: empty payload"
            assert schemas[message["headers"]["$ref"].rsplit("/", 1)[1]]["properties"], f"{name}: no headers"


def test_an_integrator_can_write_an_intake_message_from_the_orders_document_alone():
    document = checked_in("orders")
    shop_order = document["components"]["schemas"]["ShopOrderSubmitted"]
    assert set(ShopOrderSubmitted.model_json_schema()["required"]) == set(shop_order["required"])
    assert shop_order["properties"]["deliveries"]["items"]["$ref"] == "#/components/schemas/DeliveryGroup"
    assert "OrderLine" in document["components"]["schemas"]
    dlq = document["channels"]["orders:shop.orders.v1.dlq"]
    letter = document["components"]["messages"][dlq["messages"]["DeadLetter"]["$ref"].rsplit("/", 1)[1]]
    headers = document["components"]["schemas"][letter["headers"]["$ref"].rsplit("/", 1)[1]]
    assert {"dlq.original_topic", "dlq.error_class", "dlq.error_message"} <= set(headers["required"])
    replies = document["channels"]["orders:ops.replies.v1"]
    assert set(replies["messages"]) == {"CommandAccepted", "CommandRejected"}
