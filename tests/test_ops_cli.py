"""The staff CLI against the running suite: reads through the JSON endpoints, commands answered with their reasons."""

import json
import os
import uuid

from ordermesh_contracts import order_id_for, topics
from ordermesh_devstack.demo import DEMO_SHOP, demo_order
from support import publish_raw
from ops_cli import cli as _cli


async def test_staff_read_an_order_and_a_customers_points_and_a_refused_command_says_why(stack, recorder):
    order = demo_order(980_001)
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=90)

    shown = _cli(stack, "orders", "show", str(order_id), "--json")
    assert shown.returncode == 0, shown.stderr
    [view] = json.loads(shown.stdout)
    assert view["stage"] == "completed" and view["external_order_no"] == order.external_order_no

    listed = _cli(stack, "orders", "list", "--shop", DEMO_SHOP, "--stage", "completed", "--json")
    assert str(order_id) in listed.stdout

    balance = _cli(stack, "points", "balance", "--shop", DEMO_SHOP, "--customer", order.customer.customer_id, "--json")
    assert balance.returncode == 0, balance.stderr

    refused = _cli(stack, "orders", "hold", str(order_id), "too late", "--shop", DEMO_SHOP)
    assert refused.returncode == 1
    assert "a completed order can't be held" in refused.stdout


async def test_staff_set_a_shops_shipping_calendar_and_shipper_from_the_cli_and_bad_values_are_refused(stack, recorder):
    from support import fetch

    shop = f"cli-ship-{uuid.uuid4().hex[:6]}"
    done = _cli(
        stack, "shipping", "set-shop", "--shop", shop, "--time-zone", "Asia/Tokyo", "--cutoff", "11:30",
        "--closed-weekday", "6", "--closure", "2031-01-02", "--closure", "2031-01-03", "--warehouse-prefecture", "大阪府",
        "--shipper-name", "CLI商店", "--shipper-phone", "06-0000-0000", "--shipper-postal-code", "530-0001",
        "--shipper-address", "大阪府大阪市北区梅田1-1",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [row] = await fetch(stack.service_dsns["shipping"], "SELECT * FROM shops WHERE shop_id = $1", shop)
    assert (str(row["cutoff"]), row["closed_weekdays"], [d.isoformat() for d in row["closures"]]) == ("11:30:00", [6], ["2031-01-02", "2031-01-03"])
    assert (row["time_zone"], row["warehouse_prefecture"], json.loads(row["shipper"])["name"]) == ("Asia/Tokyo", "大阪府", "CLI商店")

    cleared = _cli(stack, "shipping", "set-shop", "--shop", shop, "--no-closures", "--cutoff", "16:00")
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr
    [row] = await fetch(stack.service_dsns["shipping"], "SELECT * FROM shops WHERE shop_id = $1", shop)
    assert (str(row["cutoff"]), row["closures"], row["closed_weekdays"]) == ("16:00:00", [], [6])

    refused = _cli(stack, "shipping", "set-shop", "--shop", shop, "--time-zone", "Asia/Atlantis")
    assert refused.returncode == 1
    assert "unknown time zone 'Asia/Atlantis'" in refused.stdout
    half_shipper = _cli(stack, "shipping", "set-shop", "--shop", shop, "--shipper-name", "only a name")
    assert half_shipper.returncode == 2 and "the shipper block needs" in half_shipper.stderr
    [row] = await fetch(stack.service_dsns["shipping"], "SELECT time_zone FROM shops WHERE shop_id = $1", shop)
    assert row["time_zone"] == "Asia/Tokyo"


async def test_staff_split_and_merge_orders_from_the_cli_and_a_bad_split_says_why(stack, recorder):
    from ordermesh_contracts import OrderLine

    customer_id = f"CLI-{uuid.uuid4().hex[:6]}"
    ids, skus = [], []
    for number in (980_101, 980_102):
        base = demo_order(number)
        sku = f"NOSTOCK-{uuid.uuid4().hex[:6]}"
        line = OrderLine(sku=sku, name="在庫なし", unit_price=1000, quantity=2, tax_rate_percent=10)
        order = base.model_copy(update={
            "customer": base.customer.model_copy(update={"customer_id": customer_id}),
            "deliveries": [base.deliveries[0].model_copy(update={"lines": [line]})],
            "charges": base.charges.model_copy(update={"shipping_fee": 550, "total": 2550}),
        })
        await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode())
        ids.append(order_id_for(order.shop_id, order.channel.value, order.external_order_no))
        skus.append(sku)
        await recorder.wait_for(topics.PAYMENTS_EVENTS, type="PaymentAuthorized", order_id=ids[-1], timeout=60)

    refused = _cli(stack, "orders", "split", str(ids[0]), "--into", "delivery", "--move", "GHOST=1", "--shop", DEMO_SHOP)
    assert refused.returncode == 1 and "the delivery has no such line" in refused.stdout

    split = _cli(stack, "orders", "split", str(ids[0]), "--into", "delivery", "--move", f"{skus[0]}=1", "--shop", DEMO_SHOP)
    assert split.returncode == 0, split.stdout + split.stderr
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderSplit", order_id=ids[0])

    merged = _cli(stack, "orders", "merge", str(ids[0]), str(ids[1]), "--shop", DEMO_SHOP)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    [announced] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrdersMerged", source_order_ids=[str(i) for i in ids])
    [accepted] = await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=announced.json()["order_id"])
    assert sorted(line["quantity"] for line in accepted.json()["deliveries"][0]["lines"]) == [2, 2]
