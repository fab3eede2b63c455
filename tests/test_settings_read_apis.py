"""The shop settings read endpoints on the running suite (issue 15): payments' settings and shipping's calendar answer
the shop's current values (the defaults for a shop that set none) in the shape their Set command takes, and refuse
calls without the staff token."""

import uuid
from datetime import date

import httpx

from ordermesh_contracts import SetPaymentSettings, SetShopShipping, topics
from support import publish_raw


async def _send(stack, recorder, topic: str, command) -> None:
    await publish_raw(stack.bootstrap, topic, command.model_dump_json().encode(), command.kafka_key().encode())
    [reply] = await recorder.wait_for(topics.OPS_REPLIES, command_id=command.event_id, timeout=60)
    reply = reply.json()
    assert reply["type"] == "CommandAccepted", reply


async def _get(stack, service: str, path: str, shop_id: str, token: str | None = None) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(
            f"http://127.0.0.1:{stack.processes[service].http_port}{path}", params={"shop_id": shop_id},
            headers={"Authorization": f"Bearer {token or stack.api_token}"},
        )


async def test_payment_settings_read_back_as_set_and_defaults_for_a_new_shop(stack, recorder):
    shop_id = f"read-pay-{uuid.uuid4().hex[:8]}"
    fresh = await _get(stack, "payments", "/api/payments/settings", shop_id)
    assert fresh.status_code == 200
    assert fresh.json() == {
        "shop_id": shop_id, "capture_at_authorization": False, "prepaid_due_days": 7, "authorization_valid_days": 7,
        "card_gateway": "sandbox", "reauthorize_expiring": False, "cancel_overdue_prepaid": False, "bank_account": None,
    }
    await _send(stack, recorder, topics.PAYMENTS_COMMANDS, SetPaymentSettings(
        shop_id=shop_id, issued_by="e2e", capture_at_authorization=True, prepaid_due_days=12, authorization_valid_days=5,
        card_gateway="sandbox", reauthorize_expiring=True, cancel_overdue_prepaid=True, bank_account="みずほ 普通 1234567",
    ))
    answer = (await _get(stack, "payments", "/api/payments/settings", shop_id)).json()
    assert answer == {
        "shop_id": shop_id, "capture_at_authorization": True, "prepaid_due_days": 12, "authorization_valid_days": 5,
        "card_gateway": "sandbox", "reauthorize_expiring": True, "cancel_overdue_prepaid": True,
        "bank_account": "みずほ 普通 1234567",
    }
    refused = await _get(stack, "payments", "/api/payments/settings", shop_id, token="wrong")
    assert refused.status_code == 401


async def test_shipping_calendar_reads_back_as_set_and_defaults_for_a_new_shop(stack, recorder):
    shop_id = f"read-cal-{uuid.uuid4().hex[:8]}"
    fresh = (await _get(stack, "shipping", "/api/shipping/calendar", shop_id)).json()
    assert fresh == {
        "shop_id": shop_id, "time_zone": "Asia/Tokyo", "cutoff": "15:00", "closed_weekdays": [5, 6], "closures": [],
        "warehouse_prefecture": "東京都",
    }
    await _send(stack, recorder, topics.SHIPPING_COMMANDS, SetShopShipping(
        shop_id=shop_id, issued_by="e2e", cutoff="11:30", closed_weekdays=[6], closures=[date(2026, 12, 31)],
        warehouse_prefecture="大阪府",
    ))
    answer = (await _get(stack, "shipping", "/api/shipping/calendar", shop_id)).json()
    assert answer == {
        "shop_id": shop_id, "time_zone": "Asia/Tokyo", "cutoff": "11:30", "closed_weekdays": [6],
        "closures": ["2026-12-31"], "warehouse_prefecture": "大阪府",
    }
    missing = await _get(stack, "shipping", "/api/shipping/calendar", "")
    assert missing.status_code == 400
    refused = await _get(stack, "shipping", "/api/shipping/calendar", shop_id, token="wrong")
    assert refused.status_code == 401
