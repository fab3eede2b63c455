"""Tax per rate of a stored order as staff views and the CSV export show it."""

from datetime import datetime, timezone

from ordermesh_orders.domain.taxes import export_columns, export_row, tax_of

CONTENTS = {
    "currency": "JPY",
    "deliveries": [
        {
            "address": {"name": "山田 花子", "postal_code": "150-0001", "prefecture": "東京都", "city": "渋谷区", "line1": "神宮前1-1-1"},
            "lines": [
                {"sku": "TEA", "name": "煎茶", "unit_price": 1080, "quantity": 2, "tax_rate_percent": 8},
                {"sku": "CUP", "name": "湯呑み", "unit_price": 1100, "quantity": 1, "tax_rate_percent": 10},
            ],
        }
    ],
    "charges": {"shipping_fee": 550, "payment_fee": 330, "total": 4140},
}


def test_a_stored_order_gives_each_rates_amount_and_tax_with_fees_at_the_standard_rate():
    assert tax_of(CONTENTS) == [{"rate_percent": 10, "subtotal": 1980, "tax": 180}, {"rate_percent": 8, "subtotal": 2160, "tax": 160}]


def test_the_export_always_has_ten_and_eight_percent_columns_and_adds_any_other_rate():
    assert export_columns(set()) == ["subtotal_10", "tax_10", "subtotal_8", "tax_8"]
    assert export_columns({0, 10}) == ["subtotal_10", "tax_10", "subtotal_8", "tax_8", "subtotal_0", "tax_0"]


def test_an_export_row_carries_the_charges_and_zero_for_a_rate_the_order_does_not_have():
    order = {
        "order_id": "o-1", "external_order_no": "A-1", "channel": "own_site", "stage": "completed",
        "created_at": datetime(2026, 12, 1, tzinfo=timezone.utc), "payment_method": "card", "currency": "JPY", "total": 4140,
        "contents": {**CONTENTS, "deliveries": [{**CONTENTS["deliveries"][0], "lines": CONTENTS["deliveries"][0]["lines"][1:]}]},
    }
    row = export_row(order, export_columns({0}))
    assert (row["subtotal_10"], row["tax_10"], row["subtotal_8"], row["tax_8"], row["subtotal_0"]) == (1980, 180, 0, 0, 0)
    assert (row["shipping_fee"], row["payment_fee"], row["total"]) == (550, 330, 4140)
