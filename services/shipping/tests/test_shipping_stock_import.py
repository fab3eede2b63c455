"""Stock imports without I/O: the CSV parser's line-numbered errors and the all-or-nothing validation."""

from ordermesh_shipping.domain.allocation import plan_top_up, release_plan
from ordermesh_shipping.domain.stock_import import (
    StockLine,
    parse_stock_csv,
    validate_stock_lines,
)


def test_a_well_formed_csv_becomes_stock_lines_numbered_by_file_line_with_main_as_the_default_warehouse() -> None:
    lines, errors = parse_stock_csv("sku,warehouse,on_hand\r\nMATCHA,main,12\r\nCHAWAN,,3\r\n")
    assert errors == []
    assert lines == [StockLine(2, "MATCHA", "main", 12), StockLine(3, "CHAWAN", "main", 3)]


def test_malformed_lines_are_reported_with_their_line_numbers_and_reasons() -> None:
    _lines, errors = parse_stock_csv("sku,on_hand\nMATCHA,12\nCHAWAN,three\nKYUSU\nSENCHA,1,extra\n")
    assert [str(e) for e in errors] == [
        "line 3: on_hand 'three' is not a whole number",
        "line 4: expected 2 fields, found 1",
        "line 5: expected 2 fields, found 3",
    ]


def test_a_header_without_the_required_columns_is_an_error_on_line_one() -> None:
    lines, errors = parse_stock_csv("item,qty\nMATCHA,1\n")
    assert lines == []
    assert [str(e) for e in errors] == ["line 1: header lacks column 'sku'; header lacks column 'on_hand'; header has unknown column 'item'; header has unknown column 'qty'"]


def test_unknown_skus_negative_quantities_and_duplicates_are_each_refused_with_their_line() -> None:
    lines = [
        StockLine(2, "MATCHA", "main", 5),
        StockLine(3, "TYPO-SKU", "main", 5),
        StockLine(4, "CHAWAN", "main", -1),
        StockLine(5, "MATCHA", "main", 6),
    ]
    errors = validate_stock_lines(lines, known_skus={"MATCHA", "CHAWAN"}, allocated={})
    assert [str(e) for e in errors] == [
        "line 3: unknown sku 'TYPO-SKU'",
        "line 4: on_hand -1 is negative",
        "line 5: sku 'MATCHA' in 'main' already set on line 2",
    ]


def test_new_skus_are_accepted_only_when_the_import_allows_them() -> None:
    lines = [StockLine(1, "NEW-TEA", "main", 10)]
    assert validate_stock_lines(lines, known_skus=set(), allocated={}, allow_new_skus=True) == []
    assert validate_stock_lines(lines, known_skus=set(), allocated={}) != []


def test_stock_can_not_be_set_below_what_is_already_allocated_to_orders() -> None:
    errors = validate_stock_lines([StockLine(2, "MATCHA", "main", 2)], known_skus={"MATCHA"}, allocated={("MATCHA", "main"): 3})
    assert [str(e) for e in errors] == ["line 2: on_hand 2 is below the 3 units allocated to orders"]


def test_an_unknown_cool_type_is_refused() -> None:
    errors = validate_stock_lines([StockLine(2, "MATCHA", "main", 2, "warm")], known_skus={"MATCHA"}, allocated={})
    assert "cool_type 'warm'" in str(errors[0])


def test_a_waiting_order_is_topped_up_to_full_counting_what_it_already_has() -> None:
    plan = plan_top_up({"A": 3, "B": 1}, already={"A": 1, "B": 1}, available={"A": 5})
    assert plan.quantities == {"A": 2}
    assert plan.coverage == "full"


def test_a_top_up_with_too_little_stock_leaves_the_order_partial() -> None:
    plan = plan_top_up({"A": 3}, already={}, available={"A": 2})
    assert (plan.quantities, plan.coverage) == ({"A": 2}, "partial")


def test_a_cancelled_order_releases_what_was_allocated_and_has_not_shipped() -> None:
    assert release_plan({"A": 3, "B": 1}, shipped={"B": 1}) == {"A": 3}
