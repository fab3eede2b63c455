"""The Yamato B2 Cloud CSV writer without I/O: byte-for-byte against a golden file, and refusals of what cp932 can't carry."""

from datetime import date
from pathlib import Path

import pytest
from ordermesh_shipping.domain.b2_cloud import (
    HEADER,
    B2Label,
    LabelEncodingError,
    Party,
    item_name,
    label_row,
    strictest_cool_type,
    write_b2_csv,
)

GOLDEN = Path(__file__).parent / "data" / "b2_cloud_golden.csv"
SHIPPER = Party(name="京都茶舗", phone="075-123-4567", postal_code="600-8001", address="京都府京都市下京区四条通1-1")


def labels() -> list[B2Label]:
    return [
        B2Label(
            management_number="1001",
            ship_date=date(2025, 3, 18),
            consignee=Party(name="山田 太郎", phone="03-1234-5678", postal_code="100-0001",
                            address="東京都千代田区千代田1-1", building="皇居ビル 101"),
            shipper=SHIPPER,
            item_name="抹茶 宇治 40g 他",
            delivery_date=date(2025, 3, 20),
            time_slot="14-16",
        ),
        B2Label(
            management_number="1002",
            ship_date=date(2025, 3, 18),
            consignee=Party(name="佐藤 花子", phone="06-9876-5432", postal_code="530-0001",
                            address="大阪府大阪市北区梅田1-1"),
            shipper=SHIPPER,
            item_name="冷凍 わらび餅",
            cool_type="frozen",
            cod_amount=4510,
        ),
    ]


def test_the_b2_file_matches_the_golden_file_byte_for_byte() -> None:
    assert write_b2_csv(labels()) == GOLDEN.read_bytes()


def test_the_b2_file_is_cp932_with_crlf_line_ends_and_a_header_row() -> None:
    text = write_b2_csv(labels()).decode("cp932")
    rows = text.split("\r\n")
    assert rows[0].split(",") == list(HEADER)
    assert rows[-1] == "" and "\n" not in text.replace("\r\n", "")
    assert len(rows) == 4


def test_cash_on_delivery_is_a_collect_slip_with_its_amount_and_cool_types_have_their_codes() -> None:
    prepaid, collect = (dict(zip(HEADER, label_row(label))) for label in labels())
    assert (prepaid["送り状種類"], prepaid["ｺﾚｸﾄ代金引換額（税込)"], prepaid["クール区分"]) == ("0", "", "0")
    assert (collect["送り状種類"], collect["ｺﾚｸﾄ代金引換額（税込)"], collect["クール区分"]) == ("2", "4510", "1")
    assert prepaid["配達時間帯"] == "1416" and prepaid["お届け予定日"] == "2025/03/20"
    assert prepaid["お客様管理番号"] == "1001"


def test_characters_cp932_can_not_carry_are_refused_naming_the_field_and_the_character() -> None:
    bad = labels()[0]
    bad = B2Label(**{**bad.__dict__, "consignee": Party(**{**bad.consignee.__dict__, "name": "𠮷田 太郎"})})
    with pytest.raises(LabelEncodingError) as error:
        write_b2_csv([bad])
    [problem] = error.value.problems
    assert "お届け先名" in problem and "𠮷" in problem and "U+20BB7" in problem


@pytest.mark.parametrize("number", ["5f1c9c1e-0b7d-5a3e-9a57-3c2f1d0e4b6a", "1" * 21, "１２３", "A-1"])
def test_a_management_number_beyond_b2_clouds_twenty_half_width_alphanumerics_is_refused(number) -> None:
    label = B2Label(**{**labels()[0].__dict__, "management_number": number})
    with pytest.raises(LabelEncodingError) as error:
        write_b2_csv([label])
    assert "お客様管理番号 must be at most 20 half-width letters or digits" in error.value.problems[0]


def test_frozen_beats_chilled_beats_normal_and_the_item_name_says_there_is_more() -> None:
    assert strictest_cool_type(["normal", "frozen", "chilled"]) == "frozen"
    assert strictest_cool_type([]) == "normal"
    assert item_name(["煎茶", "急須"]) == "煎茶 他"
    assert len(item_name(["あ" * 40])) == 25
