"""The fast path (pydantic reads the bytes itself) gives exactly what the strict path gives, or stands aside.

The strict path is `decode` without a `type` header (it parses, walks and validates); the fast path is taken only
with the header. For every golden message, every kind of poison and random hostile changes, both must end the same:
the same message, the same skip, or the same dead-letter class and reason.
"""

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from poison_corpus import poison_corpus

from ordermesh_contracts import ALL_MESSAGE_TYPES, ShopOrderSubmitted
from ordermesh_servicekit.decoding import MAX_DEPTH, DeadLetter, _read_fast, decode

GOLDEN = Path(__file__).parent.parent.parent / "contracts" / "tests" / "golden"
MODELS = {model.__name__: model for model in ALL_MESSAGE_TYPES}
STRICT = {name for name, model in MODELS.items() if model.model_config.get("extra") == "forbid"}


class EveryContract:
    """A subscription that handles every contract of the suite."""

    known_types = frozenset(MODELS)

    def model_for(self, message_type: str) -> Any:
        return MODELS.get(message_type)

    def wanted_values(self, model: Any) -> None:
        return None


CONTRACTS = EveryContract()


@dataclass
class FakeRecord:
    value: bytes | None
    headers: list = field(default_factory=list)
    topic: str = "some.topic.v1"
    partition: int = 0
    offset: int = 0
    key: bytes | None = None


def outcome(value: bytes | None, header_type: str | None) -> tuple[Any, ...]:
    headers = [] if header_type is None else [("type", header_type.encode())]
    try:
        message = decode(FakeRecord(value, headers), CONTRACTS)
    except DeadLetter as letter:
        return ("dead letter", letter.error_class, letter.reason)
    if message is None:
        return ("skipped",)
    # fields left to their default factories (a fresh event_id...) differ from one read to the next
    return ("message", type(message), message.model_fields_set, message.model_dump(exclude_unset=True))


def assert_same_both_ways(value: bytes | None, message_type: str) -> None:
    assert outcome(value, message_type) == outcome(value, None)


def golden_bytes() -> list[Any]:
    """Each golden file as written (indented) and as a service publishes it (compact)."""
    examples = []
    for path in sorted(GOLDEN.glob("*.json")):
        name = path.stem
        published = MODELS[name].model_validate_json(path.read_bytes()).model_dump_json().encode()
        examples.append(pytest.param(name, path.read_bytes(), id=f"{name}-indented"))
        examples.append(pytest.param(name, published, id=f"{name}-published"))
    return examples


@pytest.mark.parametrize(("name", "value"), golden_bytes())
def test_every_golden_message_is_read_fast_and_equal_to_the_strict_read(name: str, value: bytes) -> None:
    fast = _read_fast(value, MODELS[name])
    assert fast is not None
    assert outcome(value, name) == outcome(value, None)
    assert fast == MODELS[name].read(json.loads(value))


@pytest.mark.parametrize("name", ["PaymentAuthorized", "OrderAccepted", "ShopOrderSubmitted", "ShipmentShipped"])
def test_every_kind_of_poison_ends_the_same_with_the_type_header_as_without(name: str) -> None:
    for poison in poison_corpus(name, strict=name in STRICT):
        assert_same_both_ways(poison.value, name)


@pytest.mark.parametrize(
    "snippet",
    [
        '"\\u0000"', '"\\ud800"', '"\\udfff x"', '"\\u0041"', "9223372036854775808", "-9223372036854775809",
        "9223372036854775807", "1" * 400, "1e400", "-1e400", "1.5E+309", "1e308", "NaN", "Infinity", "-Infinity",
        "[" * 64 + "]" * 64, "[" * 65 + "]" * 65, '{"a": ' * 70 + "1" + "}" * 70,
    ],
)
@pytest.mark.parametrize("name", ["PaymentAuthorized", "OrderAccepted", "ShopOrderSubmitted"])
def test_a_hostile_value_in_an_unknown_or_known_field_ends_the_same_both_ways(name: str, snippet: str) -> None:
    text = (GOLDEN / f"{name}.json").read_text(encoding="utf-8")
    assert_same_both_ways(text.replace('"schema_version": 1', f'"x": {snippet}, "schema_version": 1').encode(), name)
    assert_same_both_ways(text.replace('"schema_version": 1', f'"schema_version": {snippet}').encode(), name)


def test_nesting_within_the_bound_is_read_fast_and_beyond_it_goes_the_strict_way() -> None:
    text = (GOLDEN / "PaymentAuthorized.json").read_text(encoding="utf-8")
    within = text.replace('"schema_version": 1', '"x": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + ', "schema_version": 1')
    assert _read_fast(within.encode(), MODELS["PaymentAuthorized"]) is not None
    beyond = text.replace('"schema_version": 1', '"x": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + ', "schema_version": 1')
    assert _read_fast(beyond.encode(), MODELS["PaymentAuthorized"]) is None
    assert outcome(beyond.encode(), "PaymentAuthorized")[:2] == ("dead letter", "TooDeep")


def test_a_body_without_its_own_type_is_not_read_fast_though_the_model_has_a_default() -> None:
    raw = json.loads((GOLDEN / "PaymentAuthorized.json").read_bytes())
    del raw["type"]
    assert outcome(json.dumps(raw).encode(), "PaymentAuthorized")[:2] == ("dead letter", "MissingType")


def test_a_header_naming_another_handled_contract_than_the_body_reads_the_body() -> None:
    value = (GOLDEN / "PaymentAuthorized.json").read_bytes()
    assert outcome(value, "PaymentCaptured") == outcome(value, None) == outcome(value, "PaymentAuthorized")


def test_a_strict_contract_refuses_an_unknown_field_at_any_depth_on_the_fast_path_too() -> None:
    raw = json.loads((GOLDEN / "ShopOrderSubmitted.json").read_bytes())
    raw["customer"]["gift_wrapping"] = True
    value = json.dumps(raw).encode()
    assert _read_fast(value, ShopOrderSubmitted) is None
    assert outcome(value, "ShopOrderSubmitted")[:2] == ("dead letter", "ContractViolation")


HOSTILE = [
    "\x00", "a\x00b", "\ud800", "x\udfffy", "\\u0000", "é\u2028", 2**63, 2**63 - 1, -(2**63) - 1, 10**18, 10**30,
    float("inf"), float("-inf"), float("nan"), 1e300, 0.1, -0.0, True, None, "", "NaN", ": 1e400", [], {},
    [[[[]]]], "9" * 30, "2025-03-12T01:15:02Z", "00000000-0000-0000-0000-000000000000",
]
HUGE_EXPONENT = "HUGE-EXPONENT-SENTINEL"


def _paths(raw: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(raw, dict):
        for key, value in raw.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(raw, list):
        for index, value in enumerate(raw):
            found += _paths(value, (*prefix, index))
    return found


def _mutated(raw: dict[str, Any], choice: int, what: Any, how: str) -> dict[str, Any]:
    changed = copy.deepcopy(raw)
    paths = _paths(changed)
    path = paths[choice % len(paths)]
    parent = changed
    for part in path[:-1]:
        parent = parent[part]
    if how == "replace":
        parent[path[-1]] = what
    elif how == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif how == "add" and isinstance(parent, dict):
        parent[f"extra{choice}"] = what
    elif how == "nest":
        value = parent[path[-1]]
        for _ in range(choice % 70):
            value = [value]
        parent[path[-1]] = value
    return changed


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(MODELS)),
    changes=st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from([*HOSTILE, HUGE_EXPONENT]), st.sampled_from(["replace", "delete", "add", "nest"])),
        min_size=1,
        max_size=3,
    ),
    ensure_ascii=st.booleans(),
    compact=st.booleans(),
)
def test_random_hostile_changes_to_golden_messages_end_the_same_with_and_without_the_fast_path(
    name: str, changes: list[tuple[int, Any, str]], ensure_ascii: bool, compact: bool
) -> None:
    raw = json.loads((GOLDEN / f"{name}.json").read_bytes())
    for choice, what, how in changes:
        raw = _mutated(raw, choice, what, how)
    text = json.dumps(raw, ensure_ascii=ensure_ascii, separators=(",", ":") if compact else None)
    value = text.replace(f'"{HUGE_EXPONENT}"', "1e400").encode("utf-8", "surrogatepass")
    assert_same_both_ways(value, name)
