"""A shop's mail settings: fields left out of SetShopMailSettings keep their value (the default for a new shop), in the
pure merge and through the command handler on a real PostgreSQL."""

import json

import pytest
from ordermesh_contracts import MailKind, SetShopMailSettings
from ordermesh_notify.domain.mails import DEFAULT_DISABLED_KINDS, ShopMailSettings, settings_after
from ordermesh_notify.domain.templates import MailRenderer
from ordermesh_notify.mailing import Mailer
from ordermesh_notify.staff import StaffCommands
from ordermesh_servicekit.consuming import MessageContext


def test_a_field_left_out_keeps_its_value_and_kinds_off_by_default_stay_off_for_a_new_shop() -> None:
    changed = settings_after(ShopMailSettings(), {"signature": "京都茶舗"})
    assert changed == ShopMailSettings(signature="京都茶舗")
    assert changed.disabled_kinds == DEFAULT_DISABLED_KINDS


def test_the_fields_given_replace_their_values_and_an_empty_list_turns_every_kind_on() -> None:
    current = ShopMailSettings("en", "tea", "iso-2022-jp", frozenset({MailKind.SHIPPED}))
    assert settings_after(current, {"disabled_kinds": []}) == ShopMailSettings("en", "tea", "iso-2022-jp", frozenset())
    assert settings_after(current, {"language": "ja", "disabled_kinds": ["points_confirmed"]}) == ShopMailSettings(
        "ja", "tea", "iso-2022-jp", frozenset({MailKind.POINTS_CONFIRMED})
    )


def test_a_name_that_is_no_mail_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="not a mail setting: colour"):
        settings_after(ShopMailSettings(), {"colour": "red"})


def received(**fields) -> SetShopMailSettings:
    """The command as the service parses it off the topic: only the fields in the JSON count as given."""
    return SetShopMailSettings.model_validate_json(json.dumps({"shop_id": "kyoto-tea", "issued_by": "t", **fields}))


async def stored(pool) -> tuple:
    row = await pool.fetchrow("SELECT language, signature, encoding, disabled_kinds FROM shop_mail_settings WHERE shop_id = 'kyoto-tea'")
    return row["language"], row["signature"], row["encoding"], sorted(row["disabled_kinds"])


async def test_a_command_without_disabled_kinds_keeps_the_kinds_off_and_one_with_them_replaces_them(pool) -> None:
    staff = StaffCommands(Mailer(MailRenderer(), None, sender="s@example.com", mail_domain="example.com"))

    first = received(signature="京都茶舗", encoding="iso-2022-jp")
    await staff.set_settings(first, MessageContext(pool, first.event_id, "test", log=None))
    assert await stored(pool) == ("ja", "京都茶舗", "iso-2022-jp", ["points_confirmed", "preparing_shipment"])

    turned_on = received(signature="京都茶舗", disabled_kinds=["preparing_shipment"])
    await staff.set_settings(turned_on, MessageContext(pool, turned_on.event_id, "test", log=None))
    assert await stored(pool) == ("ja", "京都茶舗", "iso-2022-jp", ["preparing_shipment"])

    renamed = received(signature="京都茶舗 本店", language="en")
    await staff.set_settings(renamed, MessageContext(pool, renamed.event_id, "test", log=None))
    assert await stored(pool) == ("en", "京都茶舗 本店", "iso-2022-jp", ["preparing_shipment"])
    reply = json.loads(await pool.fetchval("SELECT payload FROM outbox ORDER BY id DESC LIMIT 1"))
    assert reply["details"] == {
        "language": "en", "signature": "京都茶舗 本店", "encoding": "iso-2022-jp", "disabled_kinds": ["preparing_shipment"],
    }
