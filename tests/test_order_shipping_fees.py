"""The shop's shipping fee table from the staff CLI on the running suite: stored as given, and a table naming an
unknown prefecture is refused with every unknown name while the running table stays."""

import json
import uuid

from support import fetch
from ops_cli import cli as _cli


async def _table(stack, shop: str) -> dict | None:
    rows = await fetch(stack.service_dsns["orders"], "SELECT fee_table FROM shop_shipping_fees WHERE shop_id = $1", shop)
    return json.loads(rows[0]["fee_table"]) if rows else None


async def test_staff_set_a_shops_shipping_fees_from_the_cli_and_unknown_prefectures_are_refused_by_name(stack):
    shop = f"cli-fees-{uuid.uuid4().hex[:6]}"
    done = _cli(
        stack, "orders", "set-shipping-fees", "--shop", shop, "--fee", "660", "--prefecture", "北海道=1320",
        "--prefecture", "沖縄県=1650", "--free-from", "5000", "--remote-island-surcharge", "1100",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    expected = {"fee": 660, "by_prefecture": {"北海道": 1320, "沖縄県": 1650}, "free_from": 5000, "remote_island_surcharge": 1100}
    assert await _table(stack, shop) == expected
    shown = _cli(stack, "orders", "shipping-fees", "--shop", shop, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == [{"shop_id": shop, **expected}]
    assert _cli(stack, "orders", "shipping-fees", "--shop", f"{shop}-none").returncode != 0

    refused = _cli(
        stack, "orders", "set-shipping-fees", "--shop", shop, "--fee", "500", "--prefecture", "Hokkaido=1",
        "--prefecture", "東京=2", "--prefecture", "大阪府=900",
    )
    assert refused.returncode == 1
    assert "unknown prefectures: Hokkaido, 東京" in refused.stdout
    assert await _table(stack, shop) == expected

    unreadable = _cli(stack, "orders", "set-shipping-fees", "--shop", shop, "--fee", "500", "--prefecture", "北海道")
    assert unreadable.returncode == 2 and "PREFECTURE=FEE" in unreadable.stderr
    negative = _cli(stack, "orders", "set-shipping-fees", "--shop", shop, "--fee", "-1")
    assert negative.returncode != 0
    assert await _table(stack, shop) == expected
