"""Carrier label checks without I/O: each violation kind, and a clean label."""

from ordermesh_shipping.domain.carrier_rules import (
    LabelRequest,
    carrier_family,
    check_label,
)


def request(**changes) -> LabelRequest:
    base = dict(
        delivery_index=0, carrier="yamato", country="JP", postal_code="100-0001",
        cash_on_delivery=False, cool_types=frozenset({"normal"}), time_slot=None,
    )
    return LabelRequest(**{**base, **changes})


def kinds(req: LabelRequest) -> list[str]:
    return [v.kind for v in check_label(req)]


def test_an_ordinary_tokyo_parcel_passes_every_check() -> None:
    assert check_label(request(cash_on_delivery=True, time_slot="14-16", cool_types=frozenset({"frozen"}))) == []


def test_cash_on_delivery_is_not_available_on_ogasawara() -> None:
    assert "cash_on_delivery_not_available" in kinds(request(postal_code="100-2101", cash_on_delivery=True))


def test_chilled_and_frozen_are_not_available_on_ogasawara() -> None:
    found = kinds(request(postal_code="100-2101", cool_types=frozenset({"chilled", "frozen"})))
    assert "chilled_not_available" in found and "frozen_not_available" in found


def test_a_time_slot_is_not_available_on_remote_islands() -> None:
    assert "time_slot_not_available" in kinds(request(postal_code="894-0001", time_slot="14-16"))


def test_a_time_slot_the_carrier_does_not_offer_is_refused() -> None:
    [violation] = check_label(request(time_slot="12-14"))
    assert violation.kind == "time_slot_not_available" and "12-14" in violation.reason


def test_a_relay_area_is_reported_with_its_name() -> None:
    [violation] = check_label(request(postal_code="952-0001"))
    assert violation.kind == "relay_area" and "Sado" in violation.reason


def test_a_malformed_postal_code_is_an_address_error() -> None:
    assert kinds(request(postal_code="ABC")) == ["address_error"]


def test_carrier_variants_use_their_carriers_rules_and_unknown_carriers_are_not_checked() -> None:
    assert carrier_family("yamato_b2") == "yamato"
    assert kinds(request(carrier="yamato_b2", postal_code="952-0001")) == ["relay_area"]
    assert kinds(request(carrier="local-courier", postal_code="952-0001")) == []
