"""What intake decides for a new order before anything is stored: pure domain, no I/O."""

import json
from pathlib import Path

from ordermesh_contracts import ShopOrderSubmitted, Stage
from ordermesh_orders.domain.acceptance import Entry, NewTask, RuleFiring, accept

DATA = Path(__file__).parent / "data"


def shop_order(name: str) -> ShopOrderSubmitted:
    return ShopOrderSubmitted.model_validate(json.loads((DATA / f"{name}.json").read_text(encoding="utf-8")))


def rule_set(*actions: dict) -> dict:
    return {"groups": [{"name": "g", "rules": [{"name": "all", "conditions": [], "actions": list(actions)}]}]}


def test_a_watch_listed_customers_order_stays_in_review_with_a_blocking_task_named_in_its_history():
    acceptance = accept(shop_order("shop_order_cash_on_delivery"), address="ok", watch_listed=True, rule_set=None, status_groups=[])

    assert acceptance.progress.state.stage is Stage.REVIEW and acceptance.progress.transitions == []
    assert acceptance.progress.state.flags["customer"] == "watch_listed"
    assert acceptance.tasks == [NewTask("watch_listed_customer", "Watch-listed customer: check before shipping", True, "intake")]
    assert acceptance.history == [
        Entry("intake", "accepted", {}),
        Entry("intake", "task opened", {"kind": "watch_listed_customer"}, task=0),
    ]


def test_an_order_nothing_stops_moves_on_at_once_and_its_stage_changes_are_in_its_history():
    acceptance = accept(shop_order("shop_order_cash_on_delivery"), address="ok", watch_listed=False, rule_set=None, status_groups=[])

    assert acceptance.progress.state.stage is Stage.AWAITING_ALLOCATION
    assert acceptance.tasks == [] and acceptance.firings == []
    assert [entry.details for entry in acceptance.history if entry.what == "progressed"] == [
        {"from_stage": "review", "to_stage": "awaiting_payment"},
        {"from_stage": "awaiting_payment", "to_stage": "awaiting_allocation"},
    ]


def test_intake_rules_add_to_the_accepted_order_and_a_hold_holds_it_where_it_stops():
    acceptance = accept(
        shop_order("shop_order_cash_on_delivery"), address="ok", watch_listed=False, status_groups=[],
        rule_set=rule_set(
            {"type": "add_label", "label": "vip"}, {"type": "add_label", "label": "cod"},
            {"type": "add_memo", "text": "wrap it"}, {"type": "add_free_line", "sku": "GIFT", "name": "Gift"},
            {"type": "add_mail_text", "mail_kind": "order_confirmation", "text": "Thanks!"},
            {"type": "add_task", "note": "call the customer"}, {"type": "hold", "reason": "check"},
        ),
    )

    assert acceptance.labels == ["cod", "vip"] and acceptance.memo == "wrap it"
    assert acceptance.accepted.deliveries[0].lines[-1].sku == "GIFT"
    assert acceptance.accepted.mail_texts == acceptance.mail_texts == {"order_confirmation": "Thanks!"}
    assert acceptance.tasks == [NewTask("staff", "call the customer", False, "rules")]
    assert acceptance.firings == [RuleFiring("g/all")]
    state = acceptance.progress.state
    assert (state.stage, state.held_from) == (Stage.ON_HOLD, Stage.AWAITING_ALLOCATION)
    assert [(entry.actor, entry.what, entry.task) for entry in acceptance.history] == [
        ("intake", "accepted", None),
        ("rules", "rule fired", None),
        ("rules", "task opened", 0),
        ("auto", "progressed", None),
        ("auto", "progressed", None),
        ("auto", "progressed", None),
    ]


def test_a_rules_child_status_of_the_stage_the_order_reaches_at_intake_applies_and_one_it_passes_is_dropped():
    groups = [
        {"stage": "awaiting_payment", "name": "payment", "children": ["invoice sent"]},
        {"stage": "awaiting_allocation", "name": "allocation", "children": ["picking soon"]},
        {"stage": "shipped", "name": "shipped", "children": ["thanked"]},
    ]
    acceptance = accept(
        shop_order("shop_order_cash_on_delivery"), address="ok", watch_listed=False, status_groups=groups,
        rule_set={"groups": [{"name": "g", "rules": [
            {"name": status, "conditions": [], "actions": [{"type": "set_child_status", "status": status}]}
            for status in ("invoice sent", "picking soon", "thanked")
        ]}]},
    )

    assert acceptance.child_status == "picking soon"
    assert acceptance.firings == [
        RuleFiring("g/invoice sent"),
        RuleFiring("g/picking soon", applied=True),
        RuleFiring("g/thanked", "thanked", Stage.SHIPPED),
    ]
    assert [(entry.what, entry.details.get("rule")) for entry in acceptance.history if entry.actor == "rules"] == [
        ("rule fired", "g/invoice sent"), ("rule fired", "g/picking soon"), ("rule fired", "g/thanked"),
        ("rule action waiting", "g/invoice sent"), ("rule action waiting", "g/picking soon"),
        ("rule action waiting", "g/thanked"),
        ("rule action applied", "g/picking soon"), ("rule action skipped", "g/invoice sent"),
    ]
