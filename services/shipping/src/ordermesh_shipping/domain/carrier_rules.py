"""Carrier label checks (seed 002): areas where a carrier can't do cash on delivery, chilled, frozen or time slots, relay areas, address errors.

The area tables are small samples keyed by postal-code prefix (digits), modelled on the kind of
exclusion lists carriers publish for remote islands; they are not any carrier's complete list.
"""

import re
from dataclasses import dataclass, field

from .regions import normalise_postal_code

KINDS = (
    "address_error",
    "cash_on_delivery_not_available",
    "chilled_not_available",
    "frozen_not_available",
    "time_slot_not_available",
    "relay_area",
)


@dataclass(frozen=True)
class CarrierRules:
    """One carrier's service areas: postal-code prefixes without a service, relay areas, and its time slots."""

    name: str
    no_cash_on_delivery: dict[str, str] = field(default_factory=dict)
    no_chilled: dict[str, str] = field(default_factory=dict)
    no_frozen: dict[str, str] = field(default_factory=dict)
    no_time_slot: dict[str, str] = field(default_factory=dict)
    relay_areas: dict[str, str] = field(default_factory=dict)
    time_slots: frozenset[str] = frozenset()


_OGASAWARA = {"10021": "Ogasawara islands"}
_IZU = {"10001": "Izu Ōshima", "10002": "Izu Ōshima", "10011": "Miyakejima", "10012": "Mikurajima", "10014": "Hachijōjima"}

CARRIERS: dict[str, CarrierRules] = {
    "yamato": CarrierRules(
        name="yamato",
        no_cash_on_delivery=_OGASAWARA,
        no_chilled=_OGASAWARA,
        no_frozen={**_OGASAWARA, "10012": "Mikurajima"},
        no_time_slot={**_OGASAWARA, **_IZU, "894": "Amami islands"},
        relay_areas={**_IZU, "9520": "Sado", "6840": "Oki islands", "817": "Tsushima", "894": "Amami islands"},
        time_slots=frozenset({"08-12", "14-16", "16-18", "18-20", "19-21"}),
    ),
    "sagawa": CarrierRules(
        name="sagawa",
        no_cash_on_delivery=_OGASAWARA,
        no_chilled={**_OGASAWARA, **_IZU},
        no_frozen={**_OGASAWARA, **_IZU},
        no_time_slot={**_OGASAWARA, **_IZU, "894": "Amami islands", "853": "Gotō islands"},
        relay_areas={**_IZU, "9520": "Sado", "817": "Tsushima", "853": "Gotō islands", "894": "Amami islands"},
        time_slots=frozenset({"08-12", "12-14", "14-16", "16-18", "18-20", "18-21", "19-21"}),
    ),
}

_JP_POSTAL_CODE = re.compile(r"^\d{3}-?\d{4}$")


@dataclass(frozen=True)
class Violation:
    """One label-check failure of a delivery group."""

    delivery_index: int
    kind: str
    reason: str


@dataclass(frozen=True)
class LabelRequest:
    """What a label check needs of one delivery group."""

    delivery_index: int
    carrier: str
    country: str
    postal_code: str
    cash_on_delivery: bool
    cool_types: frozenset[str]
    time_slot: str | None


def carrier_family(carrier: str) -> str:
    """The carrier whose rules apply, e.g. 'yamato_b2' (Yamato labels via B2 Cloud CSV) → 'yamato'."""
    return carrier.split("_", 1)[0].lower()


def _area(table: dict[str, str], digits: str) -> str | None:
    for length in range(len(digits), 0, -1):
        if digits[:length] in table:
            return table[digits[:length]]
    return None


def check_label(request: LabelRequest) -> list[Violation]:
    """Every label-check failure of one delivery group (empty when a label can be made as asked)."""
    found: list[Violation] = []
    index = request.delivery_index

    def violation(kind: str, reason: str) -> None:
        found.append(Violation(index, kind, f"delivery {index}: {reason}"))

    rules = CARRIERS.get(carrier_family(request.carrier))
    if rules is None:
        return found
    if request.country != "JP":
        violation("address_error", f"{rules.name} delivers only within Japan, not to {request.country}")
        return found
    if not _JP_POSTAL_CODE.match(request.postal_code.strip()):
        violation("address_error", f"postal code {request.postal_code!r} is not a Japanese postal code (NNN-NNNN)")
        return found
    digits = normalise_postal_code(request.postal_code)
    if request.cash_on_delivery and (area := _area(rules.no_cash_on_delivery, digits)):
        violation("cash_on_delivery_not_available", f"{rules.name} has no cash on delivery in {area}")
    if "chilled" in request.cool_types and (area := _area(rules.no_chilled, digits)):
        violation("chilled_not_available", f"{rules.name} has no chilled delivery in {area}")
    if "frozen" in request.cool_types and (area := _area(rules.no_frozen, digits)):
        violation("frozen_not_available", f"{rules.name} has no frozen delivery in {area}")
    if request.time_slot is not None:
        if request.time_slot not in rules.time_slots:
            violation("time_slot_not_available", f"{rules.name} has no time slot {request.time_slot}")
        elif area := _area(rules.no_time_slot, digits):
            violation("time_slot_not_available", f"{rules.name} has no time-slot delivery in {area}")
    if area := _area(rules.relay_areas, digits):
        violation("relay_area", f"{area} is a {rules.name} relay area (surcharge, extra days)")
    return found
