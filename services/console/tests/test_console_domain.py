"""The console's pure parts: roles, password hashing, money and Tokyo time, flags, CSV encodings, forms to commands."""

import re
from datetime import date, datetime, timezone
from pathlib import Path
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ordermesh_contracts import BulkUpdateOrders, CancelOrder, EditOrder, HoldOrder, SendBulkMail, topics
from ordermesh_console.domain import bulk, csv_export, flags, formatting, i18n, settings_values
from ordermesh_console.domain.actions import ORDER_ACTIONS, FormError, Target, build_command
from ordermesh_console.domain.passwords import PasswordPolicyError, check_policy, hash_password, verify_password
from ordermesh_console.domain.roles import Permission, Role, allows
from ordermesh_console.domain.settings_forms import settings_command
from starlette.datastructures import FormData

TEMPLATES = Path(__file__).parents[1] / "src" / "ordermesh_console" / "templates"


def test_each_role_may_do_what_the_roles_below_it_may_and_no_more() -> None:
    assert allows(Role.VIEWER, Permission.VIEW) and not allows(Role.VIEWER, Permission.OPERATE)
    assert allows(Role.OPERATOR, Permission.OPERATE) and not allows(Role.OPERATOR, Permission.EDIT)
    assert allows(Role.EDITOR, Permission.EDIT) and not allows(Role.EDITOR, Permission.ADMINISTER)
    assert allows(Role.ADMIN, Permission.ADMINISTER)
    assert ORDER_ACTIONS["edit"].permission is Permission.EDIT and ORDER_ACTIONS["cancel"].permission is Permission.EDIT
    assert ORDER_ACTIONS["hold"].permission is Permission.OPERATE


def test_a_password_hash_is_salted_scrypt_and_only_the_right_password_matches() -> None:
    first, second = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert first.startswith("scrypt$16384$8$1$") and first != second
    assert verify_password("correct horse battery", first)
    assert not verify_password("correct horse batterx", first)
    assert not verify_password("anything", "not-a-hash") and not verify_password("x" * 5000, first)
    with pytest.raises(PasswordPolicyError):
        check_policy("short")
    with pytest.raises(PasswordPolicyError):
        check_policy("long enough\x00but NUL")


def test_yen_has_no_decimals_and_times_are_shown_in_tokyo() -> None:
    assert formatting.money(12800, "JPY") == "¥12,800"
    assert formatting.money(-500, "JPY") == "-¥500"
    assert formatting.money(1250, "USD") == "$12.50"
    assert formatting.money(5, "XYZ") == "0.05 XYZ"
    assert formatting.local_time("2026-03-01T14:30:00+00:00") == "2026/03/01 23:30"
    assert formatting.local_time(datetime(2026, 3, 1, 15, 30, tzinfo=timezone.utc)) == "2026/03/02 00:30"
    assert formatting.local_time("garbage") == "garbage"


def test_flags_are_shown_in_the_usual_order_with_a_tone_and_unknown_ones_by_name() -> None:
    shown = flags.badges({"zz_new": "odd", "address": "error", "customer": "normal", "capture": "not_applicable"}, "ja")
    assert [b.name for b in shown] == ["customer", "address", "capture", "zz_new"]
    assert [b.tone for b in shown] == ["good", "bad", "off", "wait"]
    assert shown[1].label == "住所" and shown[1].value_label == "エラー"
    assert flags.badges({"address": "error"}, "en")[0].label == "Address"


def test_csv_is_utf8_with_a_bom_or_windows_31j_and_formulas_stay_text() -> None:
    rows = [["A-1", "髙橋 ①", "=HYPERLINK(\"x\")", -5, "😀"]]
    utf8 = csv_export.encode_rows(["番号", "名前", "メモ", "数", "絵"], rows, "utf-8")
    assert utf8.startswith(b"\xef\xbb\xbf") and utf8.decode("utf-8-sig").splitlines()[1] == "A-1,髙橋 ①,\"'=HYPERLINK(\"\"x\"\")\",-5,😀"
    sjis = csv_export.encode_rows(["番号", "名前", "メモ", "数", "絵"], rows, "shift_jis")
    assert sjis.decode("cp932").splitlines()[1] == "A-1,髙橋 ①,\"'=HYPERLINK(\"\"x\"\")\",-5,〓"
    assert sjis.endswith(b"\r\n")
    with pytest.raises(ValueError):
        csv_export.encode_rows(["a"], [], "latin-1")


def _target() -> Target:
    return Target(uuid4(), "demo-shop", "hanako")


def test_a_cancellation_needs_three_explicit_choices() -> None:
    with pytest.raises(FormError) as refused:
        build_command(ORDER_ACTIONS["cancel"], {"reason": "x", "restore_stock": "yes"}, _target())
    assert len(refused.value.reasons) == 2
    command = build_command(
        ORDER_ACTIONS["cancel"],
        {"reason": "customer asked", "restore_stock": "yes", "cancel_payment": "no", "notify_customer": "yes"},
        _target(),
    )
    assert isinstance(command, CancelOrder) and command.issued_by == "hanako"
    assert (command.restore_stock, command.cancel_payment, command.notify_customer) == (True, False, True)


def test_an_edit_sends_only_what_changed_and_refuses_bad_numbers_with_every_reason() -> None:
    form = {"qty:0:SKU-1": "3", "was:0:SKU-1": "1", "qty:0:SKU-2": "2", "was:0:SKU-2": "2", "shipping_fee": "0",
            "was:shipping_fee": "550", "payment_fee": "0", "was:payment_fee": "0", "adjust_stock": "no", "reason": "r"}
    command = build_command(ORDER_ACTIONS["edit"], form, _target())
    assert isinstance(command, EditOrder)
    assert [(l.sku, l.quantity) for l in command.lines] == [("SKU-1", 3)]
    assert command.shipping_fee == 0 and command.payment_fee is None and command.adjust_stock is False
    discounted = build_command(
        ORDER_ACTIONS["edit"],
        {"qty:0:SKU-1": "1", "was:0:SKU-1": "1", "disc:0:SKU-1": "100", "was_disc:0:SKU-1": "0", "adjust_stock": "no", "reason": "r"},
        _target(),
    )
    assert [(l.sku, l.quantity, l.line_discount) for l in discounted.lines] == [("SKU-1", None, 100)]
    with pytest.raises(FormError) as refused:
        build_command(ORDER_ACTIONS["edit"], {"qty:0:SKU-1": "-1", "shipping_fee": "1e99", "reason": "r"}, _target())
    assert len(refused.value.reasons) == 3
    with pytest.raises(FormError):
        build_command(ORDER_ACTIONS["hold"], {"reason": ""}, _target())
    assert isinstance(build_command(ORDER_ACTIONS["hold"], {"reason": "check"}, _target()), HoldOrder)


def test_a_bulk_action_is_one_command_per_shop_or_per_order_and_every_order_gets_a_result() -> None:
    items = [bulk.Item(uuid4(), "shop-a", "A-1"), bulk.Item(uuid4(), "shop-a", "A-2"), bulk.Item(uuid4(), "shop-b", "B-1")]
    sends = bulk.commands_for("status", {"value": "出荷準備中"}, items, "hanako")
    assert [type(c) for _, c in sends] == [BulkUpdateOrders, BulkUpdateOrders]
    assert sends[0][1].changes.child_status == "出荷準備中" and len(sends[0][1].order_ids) == 2
    assert len(bulk.commands_for("hold", {"value": "確認"}, items, "hanako")) == 3
    mail = bulk.commands_for("mail", {"value": "shipped"}, items, "hanako")
    assert mail[0][0] == topics.NOTIFY_COMMANDS and isinstance(mail[0][1], SendBulkMail)
    with pytest.raises(FormError):
        bulk.commands_for("mail", {"value": "no_such_kind"}, items, "hanako")
    with pytest.raises(FormError):
        bulk.commands_for("status", {"value": ""}, items, "hanako")
    replies = [
        {"type": "CommandAccepted", "results": [{"item": str(items[0].order_id), "ok": True}, {"item": str(items[1].order_id), "ok": False, "reason": "completed"}]},
        {"type": "CommandRejected", "reasons": ["shop unknown"]},
    ]
    results = bulk.results(items, sends, replies)
    assert [(r["number"], r["ok"], r["reason"]) for r in results] == [
        ("A-1", True, None), ("A-2", False, "completed"), ("B-1", False, "shop unknown")
    ]
    with pytest.raises(FormError):
        bulk.parse_item("not|enough")


def test_every_word_the_templates_use_exists_in_japanese_and_english() -> None:
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"(?<![\w.])t\('([a-z_]+)'\)", template.read_text(encoding="utf-8")))
    used |= {f"action_{a}" for a in bulk.BULK_ACTIONS}
    assert used - set(i18n.WORDS) == set()
    assert all(len(words) == 2 and all(words) for words in i18n.WORDS.values())


def test_the_points_form_reads_back_the_shops_rules_and_sends_them_all_as_one_command() -> None:
    current = {
        "shop_id": "s", "rate_percent": 3, "confirm_on": "manual", "confirm_on_events": ["card_captured"],
        "allow_negative": True, "expiry_months": None,
        "campaigns": [{"multiplier": 2, "starts_on": "2026-12-01", "ends_on": None, "skus": ["A", "B"]},
                      {"multiplier": 5, "starts_on": None, "ends_on": None, "skus": None}],
    }
    form = settings_values.points_form(current)
    assert form["campaigns"] == "2 | 2026-12-01 |  | A, B\n5"
    assert (form["rate_percent"], form["per_event"], form["expiry_months"]) == ("3", "yes", "")

    posted = FormData([*((k, v) for k, v in form.items() if k != "confirm_on_events"), ("shop_id", "s"),
                       *(("confirm_on_events", e) for e in form["confirm_on_events"])])
    topic, command = settings_command("points", posted, "admin")
    assert topic == topics.POINTS_COMMANDS
    assert command.confirm_on_events == ["card_captured"]
    assert [(c.multiplier, c.starts_on, c.ends_on, c.skus) for c in command.campaigns] == [
        (2, date(2026, 12, 1), None, ["A", "B"]), (5, None, None, None)
    ]
    assert (command.rate_percent, command.confirm_on, command.allow_negative, command.expiry_months) == (3, "manual", True, None)


def test_a_points_form_with_bad_campaigns_or_numbers_is_refused_with_every_reason() -> None:
    with pytest.raises(FormError) as refused:
        settings_command("points", {"shop_id": "s", "campaigns": "x\n2 | 2026-02-30"}, "admin")
    assert [r.split(":")[0] for r in refused.value.reasons] == ["campaigns line 1", "campaigns line 2"]
    with pytest.raises(FormError) as refused:
        settings_command("points", {"shop_id": "s", "rate_percent": "1e999", "expiry_months": "\x00"}, "admin")
    assert sorted(r.split(":")[0] for r in refused.value.reasons) == ["expiry_months", "rate_percent"]


def test_payment_settings_and_the_calendar_become_the_values_their_forms_show() -> None:
    assert settings_values.payment_form({
        "card_gateway": "sandbox", "capture_at_authorization": True, "authorization_valid_days": 5,
        "reauthorize_expiring": False, "prepaid_due_days": 10, "cancel_overdue_prepaid": False, "bank_account": None,
    }) == {"card_gateway": "sandbox", "capture_at_authorization": "yes", "authorization_valid_days": "5",
           "reauthorize_expiring": "no", "prepaid_due_days": "10", "cancel_overdue_prepaid": "no", "bank_account": ""}
    assert settings_values.calendar_form({
        "time_zone": "Asia/Tokyo", "cutoff": "13:30", "closed_weekdays": [5, 6], "closures": ["2026-12-31", "2027-01-01"],
        "warehouse_prefecture": "東京都",
    }) == {"time_zone": "Asia/Tokyo", "cutoff": "13:30", "closed_weekdays": ["5", "6"], "closures": "2026-12-31\n2027-01-01",
           "warehouse_prefecture": "東京都"}
    assert settings_values.payment_form(None) == settings_values.calendar_form(None) == settings_values.points_form(None) == {}


_points_fields = st.sampled_from(
    ["rate_percent", "confirm_on", "per_event", "confirm_on_events", "allow_negative", "expiry_months", "campaigns", "shop_id"]
)


@settings(max_examples=300, deadline=None, database=None)
@given(fields=st.lists(st.tuples(_points_fields, st.text(max_size=40) | st.integers().map(str)), max_size=10))
def test_any_points_form_becomes_a_command_or_a_form_error_with_reasons(fields: list[tuple[str, str]]) -> None:
    try:
        topic, command = settings_command("points", FormData(fields), "admin")
    except FormError as error:
        assert error.reasons and all(isinstance(r, str) and r for r in error.reasons)
    else:
        assert topic == topics.POINTS_COMMANDS and command.shop_id
