"""The wire contracts: golden fixtures round-trip, every field is documented, and sloppy input is refused."""

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from ordermesh_contracts import (
    ALL_MESSAGE_TYPES,
    TOPIC_CONTRACTS,
    Command,
    Money,
    OrderAccepted,
    PaymentAuthorized,
    ShopOrderSubmitted,
    members_of,
    order_id_for,
)

GOLDEN = Path(__file__).parent / "golden"
MODELS = {model.__name__: model for model in ALL_MESSAGE_TYPES}


def golden(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))


def object_schemas(model: type[BaseModel]) -> list[tuple[str, dict[str, Any]]]:
    """The model's JSON schema and every definition it refers to, by name."""
    schema = model.model_json_schema()
    return [(schema.get("title", model.__name__), schema), *schema.get("$defs", {}).items()]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_golden_file_parses_with_its_model_and_reserialises_to_the_same_json(name: str) -> None:
    raw = golden(name)
    message = MODELS[name].model_validate(raw)
    assert message.model_dump(mode="json") == raw
    assert json.loads(message.model_dump_json()) == raw


def test_every_contract_has_a_golden_file_and_every_golden_file_a_contract() -> None:
    on_disk = {path.stem for path in GOLDEN.glob("*.json")}
    assert on_disk == set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_golden_file_carries_its_own_type_name(name: str) -> None:
    assert golden(name)["type"] == name


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_field_of_every_contract_and_of_its_nested_models_has_a_description(name: str) -> None:
    undocumented = []
    for title, schema in object_schemas(MODELS[name]):
        if "enum" in schema:
            assert schema.get("description"), f"enum {title} has no docstring"
            continue
        assert schema.get("description"), f"model {title} has no docstring"
        for field, prop in schema.get("properties", {}).items():
            if not prop.get("description"):
                undocumented.append(f"{title}.{field}")
    assert undocumented == []


STRICT = sorted(name for name, model in MODELS.items() if model.model_config.get("extra") == "forbid")
TOLERANT = sorted(name for name, model in MODELS.items() if model.model_config.get("extra") != "forbid")


def test_shop_orders_and_staff_commands_are_read_strictly_and_events_between_services_tolerantly() -> None:
    assert "ShopOrderSubmitted" in STRICT and "EditOrder" in STRICT and "SetRules" in STRICT
    assert all(issubclass(MODELS[name], Command) for name in STRICT if name != "ShopOrderSubmitted")
    assert not any(issubclass(MODELS[name], Command) for name in TOLERANT)
    assert "OrderAccepted" in TOLERANT and "PaymentCaptured" in TOLERANT


@pytest.mark.parametrize("name", STRICT)
def test_an_unknown_field_from_a_shop_or_staff_is_refused_with_an_error_naming_the_field(name: str) -> None:
    raw = {**golden(name), "gift_wrapping": True}
    with pytest.raises(ValidationError) as error:
        MODELS[name].read(raw)
    [problem] = error.value.errors()
    assert problem["type"] == "extra_forbidden"
    assert problem["loc"] == ("gift_wrapping",)


@pytest.mark.parametrize("name", TOLERANT)
def test_an_unknown_field_in_an_event_between_services_is_ignored(name: str) -> None:
    raw = {**golden(name), "gift_wrapping": True}
    message = MODELS[name].read(raw)
    assert message.model_dump(mode="json") == golden(name)


def test_an_unknown_field_inside_a_nested_model_of_a_shop_order_is_refused_too() -> None:
    raw = golden("ShopOrderSubmitted")
    raw["deliveries"][0]["lines"][0]["colour"] = "緑"
    with pytest.raises(ValidationError) as error:
        ShopOrderSubmitted.read(raw)
    [problem] = error.value.errors()
    assert problem["type"] == "extra_forbidden"
    assert problem["loc"] == ("deliveries", 0, "lines", 0, "colour")


def test_an_unknown_field_inside_a_nested_model_of_an_event_is_ignored() -> None:
    raw = golden("OrderAccepted")
    raw["deliveries"][0]["lines"][0]["colour"] = "緑"
    raw["customer"]["loyalty_tier"] = "gold"
    message = OrderAccepted.read(raw)
    assert message.model_dump(mode="json") == golden("OrderAccepted")


def test_a_field_an_event_requires_is_still_required_when_reading_tolerantly() -> None:
    raw = golden("PaymentAuthorized")
    raw.pop("amount")
    with pytest.raises(ValidationError) as error:
        PaymentAuthorized.read(raw)
    assert [problem["loc"] for problem in error.value.errors()] == [("amount",)]


@pytest.mark.parametrize("amount", [9660.5, 9660.0, "9660"])
def test_an_amount_that_is_not_an_integer_is_rejected_even_when_it_has_no_fraction(amount: object) -> None:
    raw = {**golden("PaymentAuthorized"), "amount": amount}
    with pytest.raises(ValidationError) as error:
        PaymentAuthorized.model_validate(raw)
    assert error.value.errors()[0]["loc"] == ("amount",)
    with pytest.raises(ValidationError):
        PaymentAuthorized.model_validate_json(json.dumps(raw))


def test_a_fractional_unit_price_inside_an_order_is_rejected() -> None:
    raw = golden("ShopOrderSubmitted")
    raw["deliveries"][0]["lines"][0]["unit_price"] = 2160.4
    with pytest.raises(ValidationError) as error:
        ShopOrderSubmitted.model_validate(raw)
    assert error.value.errors()[0]["loc"] == ("deliveries", 0, "lines", 0, "unit_price")


def test_money_refuses_a_fractional_amount_and_an_unknown_currency() -> None:
    assert Money(amount=9660, currency="JPY").amount == 9660
    with pytest.raises(ValidationError):
        Money.model_validate({"amount": 96.6, "currency": "JPY"})
    with pytest.raises(ValidationError):
        Money.model_validate({"amount": 9660.0, "currency": "JPY"})
    with pytest.raises(ValidationError, match="unknown currency"):
        Money.model_validate({"amount": 9660, "currency": "XYZ"})


@pytest.mark.parametrize("field", ["occurred_at", "ordered_at"])
def test_a_naive_datetime_is_rejected(field: str) -> None:
    raw = {**golden("ShopOrderSubmitted"), field: "2025-03-12T10:14:55"}
    with pytest.raises(ValidationError) as error:
        ShopOrderSubmitted.model_validate(raw)
    [problem] = error.value.errors()
    assert problem["loc"] == (field,)
    assert problem["type"] == "timezone_aware"


def test_a_malformed_email_address_is_rejected() -> None:
    raw = golden("ShopOrderSubmitted")
    raw["customer"]["email"] = "hanako.yamada.example.jp"
    with pytest.raises(ValidationError) as error:
        ShopOrderSubmitted.model_validate(raw)
    assert error.value.errors()[0]["loc"] == ("customer", "email")


def test_messages_are_immutable() -> None:
    message = PaymentAuthorized.model_validate(golden("PaymentAuthorized"))
    with pytest.raises(ValidationError):
        message.amount = 1  # type: ignore[misc]


def test_every_contract_travels_on_exactly_one_topic() -> None:
    carried = [model for contract in TOPIC_CONTRACTS.values() for model in members_of(contract)]
    assert sorted(model.__name__ for model in carried) == sorted(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_topic_contract_decodes_each_golden_file_to_its_own_model_by_type(name: str) -> None:
    [contract] = [c for c in TOPIC_CONTRACTS.values() if MODELS[name] in members_of(c)]
    message = TypeAdapter(contract).validate_json((GOLDEN / f"{name}.json").read_bytes())
    assert type(message) is MODELS[name]
    assert message.model_dump(mode="json") == golden(name)


def test_a_topic_contract_refuses_a_type_that_is_not_on_that_topic() -> None:
    payments = TOPIC_CONTRACTS["payments.events.v1"]
    with pytest.raises(ValidationError) as error:
        TypeAdapter(payments).validate_python(golden("MailSent"))
    assert error.value.errors()[0]["type"] == "union_tag_invalid"


def test_order_id_for_is_the_same_for_the_same_shop_channel_and_number() -> None:
    assert order_id_for("kyoto-tea", "rakuten", "RK-20250312-000481") == order_id_for(
        "kyoto-tea", "rakuten", "RK-20250312-000481"
    )
    assert str(order_id_for("kyoto-tea", "rakuten", "RK-20250312-000481")) == golden("OrderAccepted")["order_id"]


def test_order_id_for_differs_when_shop_channel_or_number_differs() -> None:
    ids = {
        order_id_for("kyoto-tea", "rakuten", "1001"),
        order_id_for("kyoto-tea", "yahoo", "1001"),
        order_id_for("osaka-knives", "rakuten", "1001"),
        order_id_for("kyoto-tea", "rakuten", "1002"),
    }
    assert len(ids) == 4



@pytest.mark.parametrize("email", ["not-an-address", "two@@example.jp", "hanako@example", "a b@example.jp", "x" * 250 + "@example.jp"])
def test_a_shops_order_refuses_an_email_address_the_full_check_refuses(email: str) -> None:
    raw = golden("ShopOrderSubmitted")
    raw["customer"]["email"] = email
    with pytest.raises(ValidationError):
        ShopOrderSubmitted.read(raw)


def test_a_shops_order_carries_the_email_address_normalized_as_the_full_check_leaves_it() -> None:
    raw = golden("ShopOrderSubmitted")
    raw["customer"]["email"] = "Hanako.Yamada@EXAMPLE.JP"
    assert ShopOrderSubmitted.read(raw).customer.email == "Hanako.Yamada@example.jp"


@pytest.mark.parametrize("email", ["not-an-address", "a@b@example.jp", "a b@example.jp", "a@example.jp\r\nBcc: x@example.jp", "x" * 250 + "@example.jp"])
def test_an_announced_order_bounds_the_email_address_it_carries_without_checking_it_again(email: str) -> None:
    raw = golden("OrderAccepted")
    raw["customer"]["email"] = email
    with pytest.raises(ValidationError):
        OrderAccepted.read(raw)


def test_the_customer_of_a_shops_order_goes_into_the_accepted_order_as_it_is() -> None:
    submitted = ShopOrderSubmitted.read(golden("ShopOrderSubmitted"))
    accepted = OrderAccepted(**{**dict(OrderAccepted.read(golden("OrderAccepted"))), "customer": submitted.customer})
    again = OrderAccepted.read_json(accepted.model_dump_json().encode())
    assert again.customer.model_dump() == submitted.customer.model_dump()


def test_a_shops_order_built_from_an_announced_customer_checks_their_address_in_full_again() -> None:
    announced = OrderAccepted.read(golden("OrderAccepted")).customer
    raw = golden("ShopOrderSubmitted")
    rebuilt = ShopOrderSubmitted(**{**dict(ShopOrderSubmitted.read(raw)), "customer": announced})
    assert rebuilt.customer.model_dump() == announced.model_dump()
    with pytest.raises(ValidationError):
        ShopOrderSubmitted(**{**dict(ShopOrderSubmitted.read(raw)), "customer": announced.model_copy(update={"email": "a@b"})})
