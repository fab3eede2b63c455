"""An accepted order is stored with its tasks, rule firings and history in one go, and once only (real PostgreSQL)."""

import json
from pathlib import Path
from uuid import uuid4

from ordermesh_contracts import ShopOrderSubmitted
from ordermesh_orders import store
from ordermesh_orders.domain.acceptance import accept

DATA = Path(__file__).parent / "data"


async def test_the_order_its_tasks_firings_and_history_are_stored_with_each_task_id_in_its_history_entry(pool) -> None:
    submitted = ShopOrderSubmitted.model_validate(json.loads((DATA / "shop_order_card.json").read_text(encoding="utf-8")))
    groups = [{"stage": "shipped", "name": "shipped", "children": ["thanked"]}]
    rules = {"groups": [{"name": "g", "rules": [{"name": "all", "conditions": [], "actions": [
        {"type": "add_task", "note": "first", "blocking": True}, {"type": "add_task", "note": "second"},
        {"type": "add_label", "label": "vip"}, {"type": "set_child_status", "status": "thanked"},
        {"type": "add_mail_text", "mail_kind": "order_confirmation", "text": "Thanks!"},
    ]}]}]}
    acceptance = accept(submitted, address="ok", watch_listed=True, rule_set=rules, status_groups=groups)
    cause_id = uuid4()
    async with pool.acquire() as conn:
        assert await store.insert_accepted_order(conn, acceptance, cause_id, submitted.billing_address)
        assert not await store.insert_accepted_order(conn, acceptance, uuid4(), submitted.billing_address)
        view = await store.order_view(conn, acceptance.accepted.order_id, None)
        firings = await conn.fetch("SELECT rule_id, waiting_status, waiting_stage FROM order_rule_firings")
        mail_texts = await conn.fetchval("SELECT mail_texts FROM orders")

    assert (view["stage"], view["labels"], json.loads(mail_texts)) == ("review", ["vip"], {"order_confirmation": "Thanks!"})
    assert [(t["kind"], t["note"], t["blocking"], t["opened_by"]) for t in view["tasks"]] == [
        ("watch_listed_customer", "Watch-listed customer: check before shipping", True, "intake"),
        ("delivery_date_requested", "Delivery date requested: check", False, "intake"),
        ("staff", "first", True, "rules"),
        ("staff", "second", False, "rules"),
    ]
    opened = [(h["actor"], h["details"]) for h in view["history"] if h["what"] == "task opened"]
    assert opened == [
        ("intake" if t["opened_by"] == "intake" else "rules", {"task_id": t["task_id"], "kind": t["kind"]}) for t in view["tasks"]
    ]
    assert (view["history"][0]["what"], view["history"][0]["details"]) == ("accepted", {}) and {h["cause_id"] for h in view["history"]} == {cause_id}
    assert ("rule fired", {"rule": "g/all"}) in [(h["what"], h["details"]) for h in view["history"]]
    assert [tuple(f) for f in firings] == [("g/all", "thanked", "shipped")]
