"""Rules and statuses as validated data, and what fires for which order: pure domain, no I/O."""

import pytest
from ordermesh_contracts import Stage
from ordermesh_orders.domain.areas import is_remote_island
from ordermesh_orders.domain.rules import OrderFacts, RuleSet, SetChildStatus, evaluate
from ordermesh_orders.domain.statuses import (
    child_status_refusal,
    complete,
    due_waiting,
    stage_to_wait_for,
    status_config_errors,
)
from pydantic import ValidationError


def facts(**overrides) -> OrderFacts:
    base = dict(
        payment_method="cash_on_delivery", channel="own_site", remarks=None, total=5000, prefectures=("東京都",),
        remote_island=False, skus=("SKU-001",), customer="normal", requested_date=False, child_status=None,
    )
    return OrderFacts(**{**base, **overrides})


def rules(*group_rules, enabled=True) -> RuleSet:
    return RuleSet.model_validate({"groups": [{"name": "g", "enabled": enabled, "rules": list(group_rules)}]})


def rule(name, conditions, actions, enabled=True):
    return {"name": name, "enabled": enabled, "conditions": conditions, "actions": actions}


def test_a_rule_fires_when_all_its_conditions_hold_and_only_once_per_order():
    rule_set = rules(rule("cod", [{"field": "payment_method", "op": "eq", "value": "cash_on_delivery"},
                                  {"field": "total", "op": "gte", "value": 3000}], [{"type": "add_label", "label": "cod"}]))
    assert evaluate(rule_set, facts(), set()).rule_ids == ["g/cod"]
    assert evaluate(rule_set, facts(total=2999), set()).rule_ids == []
    assert evaluate(rule_set, facts(), {"g/cod"}).rule_ids == []


def test_switched_off_rules_and_groups_never_fire():
    on = rule("a", [], [{"type": "add_label", "label": "x"}], enabled=False)
    assert evaluate(rules(on), facts(), set()).rule_ids == []
    assert evaluate(rules(rule("b", [], [{"type": "add_label", "label": "x"}]), enabled=False), facts(), set()).rule_ids == []


@pytest.mark.parametrize(
    ("condition", "order", "expected"),
    [
        ({"field": "remarks", "op": "present"}, facts(remarks="please gift wrap"), True),
        ({"field": "remarks", "op": "present"}, facts(remarks="  "), False),
        ({"field": "remarks", "op": "contains", "value": "gift"}, facts(remarks="please gift wrap"), True),
        ({"field": "prefecture", "op": "in", "value": ["沖縄県", "北海道"]}, facts(prefectures=("沖縄県",)), True),
        ({"field": "prefecture", "op": "ne", "value": "東京都"}, facts(), False),
        ({"field": "sku", "op": "contains", "value": "SKU-001"}, facts(), True),
        ({"field": "remote_island", "op": "eq", "value": True}, facts(remote_island=True), True),
        ({"field": "customer", "op": "eq", "value": "watch_listed"}, facts(), False),
        ({"field": "requested_date", "op": "present"}, facts(requested_date=True), True),
        ({"field": "channel", "op": "in", "value": ["rakuten", "yahoo"]}, facts(), False),
        ({"field": "total", "op": "lte", "value": 5000}, facts(), True),
    ],
)
def test_each_condition_field_tests_the_order(condition, order, expected):
    rule_set = rules(rule("r", [condition], [{"type": "add_label", "label": "hit"}]))
    assert bool(evaluate(rule_set, order, set()).rule_ids) is expected


def test_a_status_set_by_one_rule_makes_a_later_rule_on_that_status_fire():
    rule_set = rules(
        rule("first", [], [{"type": "set_child_status", "status": "checking"}]),
        rule("then", [{"field": "child_status", "op": "eq", "value": "checking"}], [{"type": "add_task", "note": "check"}]),
    )
    firing = evaluate(rule_set, facts(), set())
    assert firing.rule_ids == ["g/first", "g/then"]
    assert [a.status for _, a in firing.of_type(SetChildStatus)] == ["checking"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"field": "colour", "op": "eq", "value": "red"}, "field"),
        ({"field": "total", "op": "contains", "value": 5}, "does not apply"),
        ({"field": "total", "op": "gte", "value": 10.5}, "integer"),
        ({"field": "channel", "op": "in", "value": "rakuten"}, "list"),
    ],
)
def test_a_rule_set_with_an_unknown_field_or_a_bad_operator_is_invalid(bad, message):
    with pytest.raises(ValidationError, match=message):
        rules(rule("r", [bad], [{"type": "add_label", "label": "x"}]))


def test_an_unknown_action_or_an_unknown_key_is_invalid():
    with pytest.raises(ValidationError):
        rules(rule("r", [], [{"type": "launch_rocket"}]))
    with pytest.raises(ValidationError):
        RuleSet.model_validate({"groups": [], "surprise": 1})


def test_set_status_rules_that_loop_are_invalid():
    with pytest.raises(ValidationError, match="loop: a → b → a"):
        rules(
            rule("ab", [{"field": "child_status", "op": "eq", "value": "a"}], [{"type": "set_child_status", "status": "b"}]),
            rule("ba", [{"field": "child_status", "op": "eq", "value": "b"}], [{"type": "set_child_status", "status": "a"}]),
        )


def test_status_groups_fill_in_missing_stages_and_refuse_duplicates():
    groups = [{"stage": "review", "name": "新規", "children": ["要確認"]}]
    completed = complete(groups)
    assert completed[0]["name"] == "新規" and {g["stage"] for g in completed} == {s.value for s in Stage}
    assert status_config_errors(groups + [{"stage": "review", "name": "x", "children": ["要確認"]}]) == [
        "stage review has more than one group",
        "child status '要確認' is used twice",
    ]


def test_a_child_status_must_belong_to_the_group_of_the_orders_stage():
    groups = complete([{"stage": "review", "name": "新規", "children": ["要確認"]}])
    assert child_status_refusal(groups, Stage.REVIEW, "要確認") is None
    assert "belongs to the 新規 group" in child_status_refusal(groups, Stage.SHIPPED, "要確認")
    assert "no child status" in child_status_refusal(groups, Stage.REVIEW, "謎")
    assert child_status_refusal([], Stage.REVIEW, "anything") is None


def test_a_status_of_a_later_stage_waits_for_it_and_one_of_a_passed_or_unknown_stage_does_not():
    groups = complete([{"stage": "awaiting_payment", "name": "入金待ち", "children": ["銀行振込待ち"]}])
    assert stage_to_wait_for(groups, Stage.REVIEW, "銀行振込待ち") is Stage.AWAITING_PAYMENT
    assert stage_to_wait_for(groups, Stage.ON_HOLD, "銀行振込待ち", held_from=Stage.REVIEW) is Stage.AWAITING_PAYMENT
    assert stage_to_wait_for(groups, Stage.AWAITING_PAYMENT, "銀行振込待ち") is None
    assert stage_to_wait_for(groups, Stage.SHIPPED, "銀行振込待ち") is None
    assert stage_to_wait_for(groups, Stage.REVIEW, "謎") is None


def test_a_waiting_status_applies_at_its_stage_and_is_dropped_once_the_order_went_past_it():
    waiting = [("g/a", "a", Stage.AWAITING_PAYMENT), ("g/b", "b", Stage.READY_TO_SHIP)]
    assert due_waiting(waiting, Stage.AWAITING_PAYMENT) == ([("g/a", "a")], [])
    assert due_waiting(waiting, Stage.AWAITING_ALLOCATION) == ([], [("g/a", "a", Stage.AWAITING_PAYMENT)])
    assert due_waiting(waiting, Stage.ON_HOLD) == ([], [])


@pytest.mark.parametrize(("code", "remote"), [("100-0001", False), ("100-0101", True), ("100-2101", True), ("907-0001", True), ("150-0041", False)])
def test_remote_islands_are_recognised_by_postal_code(code, remote):
    assert is_remote_island(code) is remote
