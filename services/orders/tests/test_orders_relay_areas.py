"""Relay areas and the facts rules see (relay area, labels): pure domain, checked against Japan Post's data."""

import json
from pathlib import Path

import pytest
from ordermesh_contracts import ShopOrderSubmitted
from ordermesh_orders.adapters.postal import japan_post_lookup
from ordermesh_orders.domain.areas import RELAY_AREAS, is_remote_island, relay_area
from ordermesh_orders.domain.rules import OrderFacts, RuleSet, evaluate, facts_of
from ordermesh_orders.domain.tasks import TASK_KINDS
from pydantic import ValidationError

DATA = Path(__file__).parent / "data"

RELAY_CITIES = {
    "Izu Ōshima": ("東京都", ("大島町",)),
    "Miyakejima": ("東京都", ("三宅島三宅村",)),
    "Mikurajima": ("東京都", ("御蔵島村",)),
    "Hachijōjima": ("東京都", ("八丈島八丈町",)),
    "Sado": ("新潟県", ("佐渡市",)),
    "Oki islands": ("島根県", ("隠岐郡",)),
    "Tsushima": ("長崎県", ("対馬市",)),
    "Gotō islands": ("長崎県", ("五島市", "南松浦郡新上五島町")),
    "Amami islands": ("鹿児島県", ("奄美市", "大島郡")),
}


@pytest.mark.parametrize(
    ("postal_code", "area"),
    [
        ("952-0011", "Sado"),
        ("９５２－１２０９", "Sado"),  # full-width digits and hyphen, as shops send them
        ("100-0101", "Izu Ōshima"),
        ("100-1401", "Hachijōjima"),
        ("684-0403", "Oki islands"),
        ("685-0013", "Oki islands"),
        ("817-0013", "Tsushima"),
        ("853-0001", "Gotō islands"),
        ("857-4404", None),  # 新上五島町 shares 857 with Sasebo on the mainland: left out, not guessed
        ("894-0000", "Amami islands"),
        ("684-0004", None),  # Sakaiminato: 684 but on the mainland
        ("150-0041", None),
        ("951-8068", None),  # Niigata city, next to Sado's 952
    ],
)
def test_a_postal_code_is_in_the_relay_area_its_prefix_names(postal_code, area) -> None:
    assert relay_area(postal_code) == area


def test_every_relay_prefix_is_in_the_prefecture_and_city_japan_post_gives_for_it() -> None:
    for prefix, area in RELAY_AREAS.items():
        sample = next(code for n in range(10 ** (7 - len(prefix))) if japan_post_lookup(code := f"{prefix}{n:0{7 - len(prefix)}d}"))
        prefecture, city = japan_post_lookup(sample)
        expected_prefecture, expected_cities = RELAY_CITIES[area]
        assert prefecture == expected_prefecture and city.startswith(expected_cities), (prefix, sample, prefecture, city)


def _order(postal_code: str, prefecture: str, city: str) -> ShopOrderSubmitted:
    raw = json.loads((DATA / "shop_order_card.json").read_text(encoding="utf-8"))
    raw["deliveries"][0]["address"].update(postal_code=postal_code, prefecture=prefecture, city=city)
    return ShopOrderSubmitted.model_validate(raw)


def test_the_facts_of_a_sado_order_say_relay_area_and_remote_island_and_of_a_tokyo_order_neither() -> None:
    sado = facts_of(_order("952-0011", "新潟県", "佐渡市"), customer_flag="normal", child_status=None)
    tokyo = facts_of(_order("150-0041", "東京都", "渋谷区"), customer_flag="normal", child_status=None, labels=("vip",))
    assert (sado.relay_area, sado.remote_island, sado.labels) == (True, True, ())
    assert (tokyo.relay_area, tokyo.remote_island, tokyo.labels) == (False, False, ("vip",))
    assert is_remote_island("952-0011")


def test_the_relay_area_task_does_not_block_review() -> None:
    assert TASK_KINDS["relay_area"].title == "Relay area: check the surcharge"
    assert TASK_KINDS["relay_area"].blocking is False


def facts(**overrides) -> OrderFacts:
    base = dict(
        payment_method="card", channel="own_site", remarks=None, total=5000, prefectures=("東京都",), remote_island=False,
        skus=("SKU-001",), customer="normal", requested_date=False, child_status=None,
    )
    return OrderFacts(**{**base, **overrides})


def rules(*group_rules) -> RuleSet:
    return RuleSet.model_validate({"groups": [{"name": "g", "rules": list(group_rules)}]})


def test_relay_area_and_label_conditions_test_the_order() -> None:
    relay = rules({"name": "r", "conditions": [{"field": "relay_area", "op": "eq", "value": True}], "actions": [{"type": "hold"}]})
    assert evaluate(relay, facts(relay_area=True), set()).rule_ids == ["g/r"]
    assert evaluate(relay, facts(), set()).rule_ids == []
    labelled = rules({"name": "l", "conditions": [{"field": "label", "op": "in", "value": ["vip", "press"]}],
                      "actions": [{"type": "add_memo", "text": "handle with care"}]})
    assert evaluate(labelled, facts(labels=("press",)), set()).rule_ids == ["g/l"]
    assert evaluate(labelled, facts(labels=("gift",)), set()).rule_ids == []


def test_a_label_one_rule_adds_makes_a_later_rule_on_that_label_fire() -> None:
    rule_set = rules(
        {"name": "tag", "conditions": [{"field": "total", "op": "gte", "value": 3000}], "actions": [{"type": "add_label", "label": "big"}]},
        {"name": "then", "conditions": [{"field": "label", "op": "contains", "value": "big"}], "actions": [{"type": "hold"}]},
    )
    assert evaluate(rule_set, facts(), set()).rule_ids == ["g/tag", "g/then"]
    assert evaluate(rule_set, facts(total=100), set()).rule_ids == []


def test_a_label_condition_with_a_comparison_operator_is_refused() -> None:
    with pytest.raises(ValidationError, match="does not apply to 'label'"):
        rules({"name": "x", "conditions": [{"field": "label", "op": "gte", "value": 1}], "actions": [{"type": "hold"}]})


@pytest.mark.parametrize(
    ("postal_code", "remote"),
    [("891-0115", False), ("891-1105", False), ("891-4205", True), ("891-3101", True), ("853-0001", True), ("896-1101", True)],
)
def test_remote_islands_leave_mainland_kagoshima_out_and_take_goto_city_in(postal_code, remote) -> None:
    assert is_remote_island(postal_code) is remote
