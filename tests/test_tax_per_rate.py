"""Tax per rate end to end: an order mixing 8% food and 10% goods shows each rate's amount and tax in the order view,
`ordermesh orders show`, the confirmation and shipped mails, and the orders CSV export — computed once per rate."""

import csv
import io
import json

import httpx

from ordermesh_contracts import Charges, OrderLine, order_id_for, topics
from ordermesh_devstack.demo import DEMO_SHOP, demo_order
from ordermesh_devstack.sandboxes.smtp_sink import read_mails
from support import eventually, publish_raw
from ops_cli import cli as _cli

# 10%: 3 × 1,100 + shipping 550 = 3,850, tax 350. 8%: 2 × 1,080 + 7 × 107 = 2,909, tax 2,909 × 8 / 108 = 215.4 → 215
# once for the rate (rounding each line instead would give 160 + 7 × 7 = 209).
LINES = [
    OrderLine(sku="SKU-001", name="煎茶 100g", unit_price=1080, quantity=2, tax_rate_percent=8),
    OrderLine(sku="SKU-002", name="湯呑み", unit_price=1100, quantity=3, tax_rate_percent=10),
    OrderLine(sku="SKU-003", name="ほうじ茶ティーバッグ", unit_price=107, quantity=7, tax_rate_percent=8),
]
EXPECTED = [{"rate_percent": 10, "subtotal": 3850, "tax": 350}, {"rate_percent": 8, "subtotal": 2909, "tax": 215}]


async def test_an_order_mixing_eight_and_ten_percent_shows_each_rates_amount_and_tax_everywhere(stack, recorder):
    order = demo_order(970_001)
    merchandise = sum(line.unit_price * line.quantity for line in LINES)
    delivery = order.deliveries[0].model_copy(update={"lines": LINES})
    email = "tax970001@example.com"
    order = order.model_copy(update={
        "deliveries": [delivery],
        "charges": Charges(shipping_fee=550, total=merchandise + 550),
        "customer": order.customer.model_copy(update={"email": email}),
    })
    order_id = order_id_for(order.shop_id, order.channel.value, order.external_order_no)
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderCompleted", order_id=order_id, timeout=120)

    base = f"http://127.0.0.1:{stack.processes['orders'].http_port}"
    headers = {"Authorization": f"Bearer {stack.api_token}"}
    async with httpx.AsyncClient(timeout=20, headers=headers) as client:
        view = (await client.get(f"{base}/api/orders/order", params={"order_id": str(order_id)})).json()
        export = await client.get(f"{base}/api/orders/export.csv", params={"shop_id": DEMO_SHOP})
    assert view["tax_breakdown"] == EXPECTED
    assert sum(rate["subtotal"] for rate in view["tax_breakdown"]) == view["total"] == 6759

    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = {row["order_id"]: row for row in csv.DictReader(io.StringIO(export.content.decode("utf-8-sig")))}
    row = rows[str(order_id)]
    assert (row["subtotal_10"], row["tax_10"], row["subtotal_8"], row["tax_8"]) == ("3850", "350", "2909", "215")
    assert row["total"] == "6759" and row["shipping_fee"] == "550"

    shown = _cli(stack, "orders", "show", str(order_id))
    assert shown.returncode == 0, shown.stderr
    assert "tax per rate" in shown.stdout and "2909" in shown.stdout and "215" in shown.stdout
    exported = _cli(stack, "orders", "export", "--shop", DEMO_SHOP)
    assert exported.returncode == 0 and str(order_id) in exported.stdout

    mails = await eventually(lambda: len(m := [x for x in read_mails(stack.maildir) if x["To"] == email]) == 2 and m, timeout=60)
    texts = {("shipped" if "発送" in mail["Subject"] else "confirmation"): mail.get_body(("plain",)).get_content() for mail in mails}
    for kind, text in texts.items():
        assert "（10%対象 3,850円　内消費税 350円）" in text, kind
        assert "（8%対象 2,909円　内消費税 215円）" in text, kind
        assert "お支払い合計: 6,759円" in text and "送料: 550円" in text and "決済手数料: 0円" in text, kind
        assert "- 煎茶 100g × 2  2,160円 ※" in text, kind
    assert "配送業者: ヤマト運輸" in texts["shipped"]


async def test_the_export_refuses_a_request_without_a_shop_or_with_a_bad_date(stack):
    base = f"http://127.0.0.1:{stack.processes['orders'].http_port}/api/orders/export.csv"
    async with httpx.AsyncClient(timeout=20, headers={"Authorization": f"Bearer {stack.api_token}"}) as client:
        no_shop = await client.get(base)
        bad_date = await client.get(base, params={"shop_id": DEMO_SHOP, "created_from": "2026-13-40"})
        nul = await client.get(base, params={"shop_id": DEMO_SHOP, "created_to": "2026-01-01\x00"})
    assert no_shop.status_code == 400 and "shop_id" in no_shop.json()["reason"]
    assert bad_date.status_code == 400 and nul.status_code == 400
    assert json.loads(bad_date.text)["error"] == "invalid_query"
