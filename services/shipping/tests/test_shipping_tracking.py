"""Tracking numbers without I/O: Yamato check digits, reading issued-labels files, and which lines apply."""

from ordermesh_shipping.domain.tracking import (
    IssuedLabel,
    parse_issued_labels,
    plan_tracking,
    yamato_check_digit_ok,
)


def valid(prefix: int) -> str:
    return f"{prefix:011d}{prefix % 7}"


def test_a_yamato_number_is_valid_when_the_first_eleven_digits_mod_seven_is_the_twelfth() -> None:
    assert yamato_check_digit_ok("123456789013")
    assert yamato_check_digit_ok("1234-5678-9013")
    assert not yamato_check_digit_ok("123456789014")
    assert not yamato_check_digit_ok("12345678901")
    assert not yamato_check_digit_ok("12345678901X")


def test_the_issued_labels_file_is_read_by_header_names_skipping_blank_lines_and_rejecting_short_ones() -> None:
    text = "伝票番号,お客様管理番号,品名１\r\n1234-5678-9013,S1,抹茶\r\n\r\n,\r\nS2\r\n"
    labels, rejected = parse_issued_labels(text)
    assert labels == [IssuedLabel(2, "S1", "123456789013")]
    assert [(r.line, r.reason) for r in rejected] == [(5, "only 1 fields")]


def test_unknown_management_numbers_bad_check_digits_and_numbers_of_other_shipments_are_rejected_others_apply() -> None:
    labels = [
        IssuedLabel(2, "S1", valid(1001)),
        IssuedLabel(3, "NOPE", valid(1002)),
        IssuedLabel(4, "S2", "123456789014"),
        IssuedLabel(5, "S3", valid(5555)),
        IssuedLabel(6, "S4", valid(1001)),
    ]
    outcomes = plan_tracking(labels, known={"S1", "S2", "S3", "S4"}, used_by={valid(5555): "S9"})
    assert [(o.line, o.ok) for o in outcomes] == [(2, True), (3, False), (4, False), (5, False), (6, False)]
    assert "unknown management number 'NOPE'" in outcomes[1].reason
    assert "check digit" in outcomes[2].reason
    assert "already used by shipment S9" in outcomes[3].reason
    assert "already used by shipment S1" in outcomes[4].reason


def test_the_same_number_again_for_the_same_shipment_is_not_a_conflict() -> None:
    [outcome] = plan_tracking([IssuedLabel(2, "S1", valid(7))], known={"S1"}, used_by={valid(7): "S1"})
    assert outcome.ok
