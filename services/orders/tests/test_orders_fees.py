"""The shop's shipping fee table without I/O: flat fee, a prefecture's own fee, free from a merchandise total, the
remote-island surcharge (even when free), and which tables are refused."""

from ordermesh_contracts import Address
from ordermesh_orders.domain.fees import (
    PREFECTURES,
    FeeTable,
    fee_table,
    fee_table_refusals,
    shipping_fee,
)

TABLE = FeeTable(fee=660, by_prefecture={"北海道": 1320, "沖縄県": 1650}, free_from=5000, remote_island_surcharge=1100)


def address(prefecture: str = "東京都", postal_code: str = "150-0041", country: str = "JP") -> Address:
    return Address(name="山田 太郎", postal_code=postal_code, country=country, prefecture=prefecture, city="渋谷区", line1="神南1-2-3")


def test_a_destination_without_its_own_fee_pays_the_flat_fee() -> None:
    assert shipping_fee(TABLE, address("東京都"), 4999) == 660


def test_a_prefecture_with_its_own_fee_pays_that_instead_even_written_with_stray_spaces() -> None:
    assert shipping_fee(TABLE, address("北海道", "060-0001"), 3000) == 1320
    assert shipping_fee(TABLE, address(" 北海道 ", "060-0001"), 3000) == 1320


def test_shipping_is_free_from_the_free_from_total_on_and_not_below_it() -> None:
    assert shipping_fee(TABLE, address("北海道", "060-0001"), 5000) == 0
    assert shipping_fee(TABLE, address("東京都"), 4999) == 660
    assert shipping_fee(FeeTable(fee=660), address(), 10**9) == 660


def test_a_remote_island_pays_the_surcharge_on_top_and_even_when_shipping_is_free() -> None:
    ishigaki = address("沖縄県", "907-0004")
    naha = address("沖縄県", "900-0001")
    assert shipping_fee(TABLE, ishigaki, 3000) == 1650 + 1100
    assert shipping_fee(TABLE, ishigaki, 5000) == 1100
    assert shipping_fee(TABLE, naha, 3000) == 1650
    assert shipping_fee(TABLE, address("東京都", "100-1101"), 5000) == 1100  # 東京都 大島町 (Izu Ōshima)


def test_a_postal_code_abroad_is_never_a_japanese_remote_island() -> None:
    assert shipping_fee(TABLE, address("CA", "90700", country="US"), 3000) == 660


def test_every_unknown_prefecture_is_named_and_negative_prefecture_fees_refused() -> None:
    assert len(PREFECTURES) == len(set(PREFECTURES)) == 47
    assert fee_table_refusals({"北海道": 1320, "東京都": 0, "沖縄県": 1650}) == []
    assert fee_table_refusals({"東京": 800, "北海道": 1320, "Osaka": 900}) == [
        "unknown prefectures: 東京, Osaka (use the full name, e.g. 北海道, 東京都, 沖縄県)"
    ]
    assert fee_table_refusals({"北海道": -1}) == ["the fee for 北海道 is negative (-1)"]
    assert fee_table_refusals({"北海道": 1, "北海道 ": 2}) == ["prefectures given twice: 北海道"]


def test_a_table_keeps_prefecture_names_as_addresses_write_them_and_survives_its_stored_form() -> None:
    table = fee_table(660, {"　沖縄県": 1650}, 5000, 1100)
    assert table.by_prefecture == {"沖縄県": 1650}
    assert FeeTable.from_json(table.as_json()) == table
