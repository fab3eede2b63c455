"""Tax per rate: per-rate amounts and the tax of each rate, rounded once per rate per document."""

from ordermesh_contracts import Address, Charges, DeliveryGroup, OrderLine, RateTotal, tax_breakdown

ADDRESS = Address(name="山田 花子", postal_code="150-0001", prefecture="東京都", city="渋谷区", line1="神宮前1-1-1")


def delivery(*lines: tuple[int, int, int, int]) -> DeliveryGroup:
    return DeliveryGroup(
        address=ADDRESS,
        lines=[
            OrderLine(sku=f"S{i}", name="品", unit_price=price, quantity=qty, tax_rate_percent=rate, line_discount=discount)
            for i, (price, qty, rate, discount) in enumerate(lines)
        ],
    )


def test_food_at_eight_percent_and_goods_at_ten_each_get_their_subtotal_and_tax_with_fees_at_ten():
    order = [delivery((2160, 2, 8, 0), (3300, 1, 10, 0))]
    result = tax_breakdown(order, Charges(shipping_fee=550, payment_fee=330, total=8500))
    assert result == [RateTotal(rate_percent=10, subtotal=4180, tax=380), RateTotal(rate_percent=8, subtotal=4320, tax=320)]


def test_tax_is_rounded_once_per_rate_not_per_line():
    # three lines of 108 at 8% would each round to 8 (24 in all); the rate's 324 holds exactly 24
    # but seven lines of 107 hold 7 × 7 = 49 per line vs 749 × 8 / 108 = 55 once per rate
    result = tax_breakdown([delivery(*[(107, 1, 8, 0)] * 7)], Charges(total=749))
    assert result == [RateTotal(rate_percent=8, subtotal=749, tax=55)]


def test_the_order_discount_is_shared_across_rates_in_proportion_and_adds_up_exactly():
    result = tax_breakdown([delivery((1000, 1, 8, 0), (2000, 1, 10, 0))], Charges(order_discount=100, total=2900))
    assert [(r.rate_percent, r.subtotal) for r in result] == [(10, 1933), (8, 967)]
    assert sum(r.subtotal for r in result) == 2900


def test_points_used_reduce_no_rate_and_line_discounts_and_cancelled_units_do():
    order = [delivery((1080, 2, 8, 80), (1080, -1, 8, 0))]
    result = tax_breakdown(order, Charges(points_used=500, total=500))
    assert result == [RateTotal(rate_percent=8, subtotal=1000, tax=74)]


def test_fees_of_a_foreign_currency_order_follow_its_highest_line_rate_and_empty_rates_are_left_out():
    result = tax_breakdown([delivery((1999, 1, 0, 0))], Charges(shipping_fee=500, total=2499), currency="USD")
    assert result == [RateTotal(rate_percent=0, subtotal=2499, tax=0)]
    assert tax_breakdown([delivery((0, 1, 10, 0))], Charges(total=0)) == []
