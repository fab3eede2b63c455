"""End to end on the real broker (issue 6): split shipments, every carrier rule's label-check flag, the same-day cutoff
and a shop closure pushing the earliest ship date (made deterministic with SetShopShipping), and the B2 export
carrying the shop's shipper block."""

import base64
import json
import uuid
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest

from ordermesh_contracts import (
    ExportLabels,
    ImportStock,
    ImportTrackingCsv,
    Payment,
    PaymentMethod,
    SetShopShipping,
    Shipper,
    StockLevel,
    order_id_for,
    topics,
)
from ordermesh_devstack.demo import demo_order
from ordermesh_shipping.domain.tracking import yamato_check_digit_ok
from support import eventually, fetch, publish_raw
from test_shipping_stock_consistency import stock_disagreements

STAFF = {"shop_id": "demo-shop", "issued_by": "e2e"}
OGASAWARA = {"postal_code": "100-2101", "prefecture": "東京都", "city": "小笠原村", "line1": "父島"}
SADO = {"postal_code": "952-0011", "prefecture": "新潟県", "city": "佐渡市", "line1": "両津夷1"}


@pytest.fixture(autouse=True)
async def stock_agrees_after_each_test(stack):
    yield
    assert await stock_disagreements(stack) == []


def order_of(number: int, groups: list[dict], *, shop_id: str = "demo-shop", payment: Payment | None = None):
    """A demo order with delivery groups given as {lines: [(sku, qty)], carrier, address, time_slot, requested_date}."""
    base = demo_order(number, shop_id=shop_id)
    template, delivery = base.deliveries[0].lines[0], base.deliveries[0]
    deliveries = []
    for group in groups:
        lines = [template.model_copy(update={"sku": sku, "quantity": qty, "name": f"商品 {sku}"}) for sku, qty in group["lines"]]
        address = delivery.address.model_copy(update=group.get("address", {}))
        deliveries.append(delivery.model_copy(update={
            "lines": lines, "carrier": group.get("carrier", "yamato"), "address": address,
            "time_slot": group.get("time_slot"), "requested_date": group.get("requested_date"),
        }))
    total = sum(line.unit_price * line.quantity for d in deliveries for line in d.lines) + base.charges.shipping_fee
    return base.model_copy(update={
        "deliveries": deliveries, "charges": base.charges.model_copy(update={"total": total}),
        "payment": payment or base.payment,
    })


async def submit(stack, order) -> uuid.UUID:
    await publish_raw(stack.bootstrap, topics.SHOP_ORDERS, order.model_dump_json().encode(), order.external_order_no.encode())
    return order_id_for(order.shop_id, order.channel.value, order.external_order_no)


async def command(stack, recorder, message) -> dict:
    await publish_raw(stack.bootstrap, topics.SHIPPING_COMMANDS, message.model_dump_json().encode(), message.kafka_key().encode())
    [reply] = await recorder.wait_for(topics.OPS_REPLIES, command_id=message.event_id, timeout=60)
    return reply.json()


async def import_stock(stack, recorder, levels: dict[str, tuple[int, str | None]]) -> None:
    lines = [StockLevel(sku=sku, on_hand=units, cool_type=cool) for sku, (units, cool) in levels.items()]
    reply = await command(stack, recorder, ImportStock(**STAFF, lines=lines, allow_new_skus=True))
    assert reply["type"] == "CommandAccepted", reply


async def order_flags(stack, order_id) -> dict:
    rows = await fetch(stack.service_dsns["orders"], "SELECT stage, flags FROM orders WHERE order_id = $1", order_id)
    return {"stage": rows[0]["stage"], **json.loads(rows[0]["flags"])} if rows else {}


def valid_tracking_number(seed: int) -> str:
    body = 50_000_000_000 + seed % 10_000_000_000
    return f"{body:011d}{body % 7}"


async def test_an_order_of_two_delivery_groups_ships_in_two_shipments_partly_then_all(stack, recorder):
    first, second = f"SPL-{uuid.uuid4().hex[:8]}", f"SPL-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, {first: (10, None), second: (10, None)})
    # The second group's labels come from the B2 CSV round trip, so it ships only when the test imports its number.
    order = order_of(990_001, [{"lines": [(first, 1)]}, {"lines": [(second, 2)], "carrier": "yamato_b2"}])
    order_id = await submit(stack, order)
    requests = await recorder.wait_for(topics.SHIPPING_EVENTS, 2, type="ShipmentRequested", order_id=order_id, timeout=90)
    assert sorted(r.json()["delivery_index"] for r in requests) == [0, 1]

    [partly] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentShipped", order_id=order_id, timeout=60)
    body = partly.json()
    assert (body["delivery_index"], body["all_shipped"], body["lines"]) == (0, False, [{"sku": first, "quantity": 1}])
    assert yamato_check_digit_ok(body["tracking_number"])
    await eventually(lambda: _flag_is(stack, order_id, "shipping", "partly_shipped"))

    shipment_id = next(r.json()["shipment_id"] for r in requests if r.json()["delivery_index"] == 1)
    reply = await command(stack, recorder, ExportLabels(**STAFF, shipment_ids=[uuid.UUID(shipment_id)]))
    header, label, *_ = base64.b64decode(reply["details"]["content_base64"]).decode("cp932").split("\r\n")
    number, label_no = valid_tracking_number(uuid.UUID(shipment_id).int), label.split(",")[0]
    issued = f"{header}\r\n{label.replace(f'{label_no},0,0,,', f'{label_no},0,0,{number},', 1)}\r\n"
    assert [r["ok"] for r in (await command(stack, recorder, ImportTrackingCsv(**STAFF, csv=issued)))["results"]] == [True]
    shipped = await recorder.wait_for(topics.SHIPPING_EVENTS, 2, type="ShipmentShipped", order_id=order_id, timeout=60)
    last = next(s.json() for s in shipped if s.json()["delivery_index"] == 1)
    assert (last["all_shipped"], last["tracking_number"]) == (True, number)
    await eventually(lambda: _flag_is(stack, order_id, "shipping", "shipped"))
    rows = await fetch(stack.service_dsns["shipping"], "SELECT sku, on_hand, allocated FROM stock WHERE sku = ANY($1::text[]) ORDER BY sku", sorted([first, second]))
    assert {row["sku"]: (row["on_hand"], row["allocated"]) for row in rows} == {first: (9, 0), second: (8, 0)}


async def test_each_carrier_rule_fails_its_label_check_and_the_order_shows_the_flag(stack, recorder):
    normal, chilled, frozen = (f"LBL-{uuid.uuid4().hex[:8]}" for _ in range(3))
    await import_stock(stack, recorder, {normal: (10, None), chilled: (10, "chilled"), frozen: (10, "frozen")})
    island = order_of(
        990_002,
        [{"lines": [(normal, 1), (chilled, 1), (frozen, 1)], "address": OGASAWARA, "time_slot": "14-16"}],
        payment=Payment(method=PaymentMethod.CASH_ON_DELIVERY),
    )
    slot = order_of(990_003, [{"lines": [(normal, 1)], "time_slot": "12-14"}])
    relay = order_of(990_004, [{"lines": [(normal, 1)], "address": SADO}])
    island_id, slot_id, relay_id = [await submit(stack, order) for order in (island, slot, relay)]

    failures = await recorder.wait_for(topics.SHIPPING_EVENTS, 4, type="LabelCheckFailed", order_id=island_id, timeout=90)
    assert sorted(f.json()["kind"] for f in failures) == [
        "cash_on_delivery_not_available", "chilled_not_available", "frozen_not_available", "time_slot_not_available",
    ]
    assert all(f.json()["carrier"] == "yamato" and "Ogasawara" in f.json()["reason"] for f in failures)
    [slot_failure] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="LabelCheckFailed", order_id=slot_id, timeout=60)
    assert (slot_failure.json()["kind"], slot_failure.json()["reason"]) == ("time_slot_not_available", "delivery 0: yamato has no time slot 12-14")
    [relay_failure] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="LabelCheckFailed", order_id=relay_id, timeout=60)
    assert relay_failure.json()["kind"] == "relay_area" and "Sado" in relay_failure.json()["reason"]

    await eventually(lambda: _flag_is(stack, island_id, "label_check", "failed"))
    await eventually(lambda: _flag_is(stack, slot_id, "label_check", "failed"))
    await eventually(lambda: _flag_is(stack, relay_id, "label_check", "relay_area"))
    tasks = await fetch(stack.service_dsns["orders"], "SELECT kind FROM order_tasks WHERE order_id = $1", island_id)
    assert "label_check_failed" in {row["kind"] for row in tasks}


def _working(day: date) -> bool:
    return day not in holidays.country_holidays("JP", years=day.year)


def _first_working_day(day: date) -> date:
    while not _working(day):
        day += timedelta(days=1)
    return day


async def test_the_same_day_cutoff_decides_whether_an_order_ships_today(stack, recorder):
    now = datetime.now(timezone.utc)
    # A zone where it is about noon now, so cutoffs three hours either side can't straddle midnight.
    offset = 12 - now.hour
    zone = "Etc/GMT" + ("+" if offset <= 0 else "-") + str(abs(offset)) if offset else "Etc/GMT"
    local = now.astimezone(ZoneInfo(zone))
    shops = {}
    for name, shift in (("early", -3), ("late", 3)):
        shop = f"cut-{name}-{uuid.uuid4().hex[:6]}"
        cutoff = (local + timedelta(hours=shift)).strftime("%H:%M")
        reply = await command(stack, recorder, SetShopShipping(shop_id=shop, issued_by="e2e", time_zone=zone, cutoff=cutoff, closed_weekdays=[], closures=[]))
        assert reply["type"] == "CommandAccepted", reply
        shops[name] = await submit(stack, order_of(990_005, [{"lines": [("SKU-001", 1)]}], shop_id=shop))
    checked = {}
    for name, order_id in shops.items():
        [event] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="DeliveryDateChecked", order_id=order_id, timeout=90)
        checked[name] = date.fromisoformat(event.json()["earliest_ship_date"])
    today = local.date()
    assert checked == {"late": _first_working_day(today), "early": _first_working_day(today + timedelta(days=1))}


async def test_a_shop_closure_pushes_the_earliest_ship_and_delivery_dates_and_a_requested_date_before_them_is_an_error(stack, recorder):
    shop = f"cal-{uuid.uuid4().hex[:6]}"
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date()
    opening = _first_working_day(today + timedelta(days=10))
    closures = [today - timedelta(days=1) + timedelta(days=n) for n in range((opening - today).days + 1)]
    reply = await command(stack, recorder, SetShopShipping(shop_id=shop, issued_by="e2e", time_zone="Asia/Tokyo", closed_weekdays=[], closures=closures))
    assert reply["type"] == "CommandAccepted" and reply["details"]["closures"][-1] == (opening - timedelta(days=1)).isoformat()

    order_id = await submit(stack, order_of(990_006, [{"lines": [("SKU-001", 1)], "requested_date": opening}], shop_id=shop))
    [event] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="DeliveryDateChecked", order_id=order_id, timeout=90)
    body = event.json()
    assert (body["result"], body["earliest_ship_date"]) == ("error", opening.isoformat())
    assert body["earliest_delivery_date"] == (opening + timedelta(days=1)).isoformat()
    assert opening.isoformat() in body["reasons"][0]
    await eventually(lambda: _flag_is(stack, order_id, "delivery_date", "error"))


async def test_a_public_holiday_is_skipped_and_a_requested_date_right_after_it_is_a_delivery_date_error(stack, recorder):
    shop = f"hol-{uuid.uuid4().hex[:6]}"
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date()
    calendar = holidays.country_holidays("JP", years=[today.year, today.year + 1])
    holiday = min(day for day in calendar if day > today + timedelta(days=1))
    # The shop ships only on the holiday's weekday, and every such day before it is a closure: the holiday is the
    # first candidate, so only the holiday calendar can push the ship date past it.
    closures = [day for day in (today + timedelta(days=n) for n in range((holiday - today).days)) if day.weekday() == holiday.weekday()]
    closed = [weekday for weekday in range(7) if weekday != holiday.weekday()]
    reply = await command(stack, recorder, SetShopShipping(shop_id=shop, issued_by="e2e", time_zone="Asia/Tokyo", closed_weekdays=closed, closures=closures))
    assert reply["type"] == "CommandAccepted", reply
    expected = holiday + timedelta(days=7)
    while expected in calendar:
        expected += timedelta(days=7)

    requested = holiday + timedelta(days=1)
    order_id = await submit(stack, order_of(990_008, [{"lines": [("SKU-001", 1)], "requested_date": requested}], shop_id=shop))
    [event] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="DeliveryDateChecked", order_id=order_id, timeout=90)
    body = event.json()
    assert (body["result"], body["earliest_ship_date"]) == ("error", expected.isoformat())
    assert body["earliest_delivery_date"] == (expected + timedelta(days=1)).isoformat()
    assert body["deliveries"][0]["requested_date"] == requested.isoformat()
    await eventually(lambda: _flag_is(stack, order_id, "delivery_date", "error"))
    tasks = await fetch(stack.service_dsns["orders"], "SELECT kind FROM order_tasks WHERE order_id = $1", order_id)
    assert "delivery_date_error" in {row["kind"] for row in tasks}


async def test_shop_settings_with_bad_values_are_rejected_with_every_reason_and_change_nothing(stack, recorder):
    shop = f"bad-{uuid.uuid4().hex[:6]}"
    reply = await command(stack, recorder, SetShopShipping(shop_id=shop, issued_by="e2e", time_zone="Asia/Atlantis", closed_weekdays=[0, 1, 2, 3, 4, 5, 6, 9]))
    assert reply["type"] == "CommandRejected"
    assert reply["reasons"] == [
        "unknown time zone 'Asia/Atlantis' (an IANA name such as Asia/Tokyo)",
        "weekdays [9] are outside 0..6 (Monday = 0)",
        "every weekday is closed: the shop would never ship",
    ]
    assert await fetch(stack.service_dsns["shipping"], "SELECT 1 FROM shops WHERE shop_id = $1", shop) == []


async def test_the_b2_export_carries_the_shops_shipper_block(stack, recorder):
    shop = f"b2s-{uuid.uuid4().hex[:6]}"
    sku = f"B2S-{uuid.uuid4().hex[:8]}"
    await import_stock(stack, recorder, {sku: (5, None)})
    shipper = Shipper(name="オーダーメッシュ商店", phone="03-0000-1111", postal_code="150-0001", address="東京都渋谷区神宮前1-1", building="メッシュビル3F")
    reply = await command(stack, recorder, SetShopShipping(shop_id=shop, issued_by="e2e", shipper=shipper, warehouse_prefecture="東京都"))
    assert reply["type"] == "CommandAccepted", reply
    order_id = await submit(stack, order_of(990_007, [{"lines": [(sku, 1)], "carrier": "yamato_b2"}], shop_id=shop))
    [requested] = await recorder.wait_for(topics.SHIPPING_EVENTS, type="ShipmentRequested", order_id=order_id, timeout=90)

    reply = await command(stack, recorder, ExportLabels(shop_id=shop, issued_by="e2e"))
    assert reply["type"] == "CommandAccepted", reply
    header, label, *_ = base64.b64decode(reply["details"]["content_base64"]).decode("cp932").split("\r\n")
    row = dict(zip(header.split(","), label.split(","), strict=True))
    assert row["お客様管理番号"].isdigit() and len(row["お客様管理番号"]) <= 20  # B2 Cloud's limit
    assert (row["ご依頼主名"], row["ご依頼主電話番号"], row["ご依頼主郵便番号"]) == (shipper.name, shipper.phone, shipper.postal_code)
    assert (row["ご依頼主住所"], row["ご依頼主アパートマンション"]) == (shipper.address, shipper.building)


async def _flag_is(stack, order_id, flag: str, value: str) -> bool:
    return (await order_flags(stack, order_id)).get(flag) == value


