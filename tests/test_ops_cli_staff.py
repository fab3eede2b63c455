"""The staff CLI does what its help says, against the running suite: every date/time format, status groups, rules, a
phone order keyed in and given a child status, a sign-up bonus, JSON replies, and its settings found from any directory."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from ordermesh_contracts import order_id_for, topics
from ordermesh_devstack.demo import demo_order
from ordermesh_devstack.stack import SERVICES
from support import eventually, fetch

SHOP = "cli-staff-shop"
ORDERMESH = str(Path(sys.executable).with_name("ordermesh"))


def _settings(stack) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "ORDERMESH_API_TOKEN": stack.api_token,
        **{f"ORDERMESH_{name.upper()}_URL": f"http://127.0.0.1:{stack.processes[name].http_port}" for name in SERVICES},
    }


def _cli(stack, *args: str, cwd: str = "/", env: dict | None = None) -> subprocess.CompletedProcess:
    environment = env if env is not None else {**os.environ, **_settings(stack)}
    return subprocess.run([ORDERMESH, *args], env={**environment, "COLUMNS": "200"}, capture_output=True, text=True, timeout=120, cwd=cwd)


def _reply(done: subprocess.CompletedProcess) -> dict:
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout)


async def test_every_documented_date_and_time_format_is_taken_and_a_time_without_offset_is_refused_with_the_reason(stack):
    for paid_from, paid_until in (("2026-12-02T02:02:58+00:00", "2026-12-02T11:02:58Z"), ("2026-12-01", "2026-12-02T11:02+09:00")):
        done = _cli(stack, "--json", "points", "bulk-confirm", "--shop", SHOP, "--paid-from", paid_from, "--paid-until", paid_until)
        assert done.returncode == 0 and _reply(done)["type"] == "CommandAccepted", done.stdout + done.stderr
    expired = _cli(stack, "--json", "points", "expire", "--shop", SHOP, "--as-of", "2026-12-02T02:02:58+00:00")
    # the day got through: the points service answers on the shop's own terms (this shop has no expiry set)
    assert _reply(expired)["command_type"] == "ExpirePoints" and "expiry" in " ".join(_reply(expired).get("reasons", ["expiry"]))
    listed = _cli(stack, "orders", "list", "--shop", SHOP, "--from", "2026-12-01T00:00:00+09:00", "--to", "2026-12-31", "--json")
    assert listed.returncode == 0, listed.stderr

    naive = _cli(stack, "points", "bulk-confirm", "--shop", SHOP, "--paid-from", "2026-12-02T02:02:58")
    assert naive.returncode == 2 and "has no offset" in naive.stderr
    garbage = _cli(stack, "orders", "list", "--from", "02/12/2026")
    assert garbage.returncode == 2 and "is not an ISO 8601 time" in garbage.stderr


async def test_staff_set_statuses_and_rules_enter_a_phone_order_and_set_its_child_status_from_the_cli(stack, recorder, tmp_path):
    statuses = _cli(
        stack, "--json", "orders", "set-statuses", "--shop", SHOP,
        "--group", "review=新規受付:電話確認,確認済み", "--group", "awaiting_payment=入金待ち:銀行振込待ち",
    )
    assert statuses.returncode == 0 and _reply(statuses)["type"] == "CommandAccepted", statuses.stdout + statuses.stderr
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"groups": [{"name": "phone", "rules": [{
        "name": "call back phone orders",
        "conditions": [{"field": "channel", "op": "eq", "value": "phone"}],
        "actions": [{"type": "set_child_status", "status": "電話確認"}, {"type": "add_task", "note": "call back", "blocking": True}],
    }]}]}, ensure_ascii=False), encoding="utf-8")
    done = _cli(stack, "--json", "orders", "set-rules", str(rules), "--shop", SHOP)
    assert done.returncode == 0 and _reply(done)["details"] == {"rules": 1}, done.stdout + done.stderr

    taken = demo_order(985_001, shop_id=SHOP).model_dump(
        mode="json", include={"customer", "billing_address", "deliveries", "charges", "payment", "remarks"}
    )
    order_file = tmp_path / "phone-order.json"
    order_file.write_text(json.dumps(taken, ensure_ascii=False), encoding="utf-8")
    number = f"TEL-{uuid.uuid4().hex[:8]}"
    entered = _cli(stack, "--json", "orders", "enter", str(order_file), "--channel", "phone", "--number", number, "--shop", SHOP)
    assert entered.returncode == 0 and _reply(entered)["type"] == "CommandAccepted", entered.stdout + entered.stderr
    order_id = order_id_for(SHOP, "phone", number)
    await recorder.wait_for(topics.ORDERS_EVENTS, type="OrderAccepted", order_id=order_id, timeout=60)

    async def child_status():
        rows = await fetch(stack.service_dsns["orders"], "SELECT child_status FROM orders WHERE order_id = $1", order_id)
        return rows[0]["child_status"] if rows else None

    assert await eventually(lambda: _is(child_status(), "電話確認"), timeout=30)
    done = _cli(stack, "--json", "orders", "set-status", str(order_id), "確認済み", "--shop", SHOP)
    assert done.returncode == 0 and _reply(done)["type"] == "CommandAccepted", done.stdout
    assert await child_status() == "確認済み"
    refused = _cli(stack, "--json", "orders", "set-status", str(order_id), "入金待ちではない", "--shop", SHOP)
    assert refused.returncode == 1 and _reply(refused)["type"] == "CommandRejected"

    again = _cli(stack, "orders", "enter", str(order_file), "--channel", "phone", "--number", number, "--shop", SHOP)
    assert again.returncode == 1 and "already exists" in again.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"customer": {"name": ""}}', encoding="utf-8")
    invalid = _cli(stack, "orders", "enter", str(bad), "--shop", SHOP)
    assert invalid.returncode == 2 and "customer" in invalid.stderr


async def _is(value, expected) -> bool:
    return (await value) == expected


async def test_a_sign_up_bonus_goes_to_a_customer_with_no_order_yet_and_an_unmarked_unknown_customer_is_refused(stack):
    customer = f"NEW-{uuid.uuid4().hex[:8]}"
    refused = _cli(stack, "--json", "points", "grant", "500", "--shop", SHOP, "--customer", customer, "--reason", "入会特典")
    assert refused.returncode == 1 and any("unknown customer" in r for r in _reply(refused)["reasons"])
    granted = _cli(stack, "--json", "points", "grant", "500", "--shop", SHOP, "--customer", customer, "--reason", "入会特典", "--new-customer")
    assert granted.returncode == 0 and _reply(granted)["details"]["balance"]["available"] == 500, granted.stdout


async def test_the_cli_finds_run_ops_env_from_any_directory_below_it(stack, tmp_path):
    (tmp_path / ".run").mkdir()
    (tmp_path / ".run" / "ops.env").write_text("".join(f"{k}={v}\n" for k, v in _settings(stack).items()), encoding="utf-8")
    deep = tmp_path / "services" / "orders" / "src"
    deep.mkdir(parents=True)
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERMESH_", "KAFKA_"))} | {"HOME": str(tmp_path / "home")}
    found = _cli(stack, "orders", "list", "--shop", SHOP, "--json", cwd=str(deep), env=bare)
    assert found.returncode == 0, found.stderr
    elsewhere = _cli(stack, "orders", "list", "--shop", SHOP, "--json", cwd="/", env=bare)
    assert elsewhere.returncode != 0 and "no address for orders" in elsewhere.stderr + elsewhere.stdout
    explicit = _cli(stack, "orders", "list", "--shop", SHOP, "--json", cwd="/", env={**bare, "ORDERMESH_OPS_ENV": str(tmp_path / ".run" / "ops.env")})
    assert explicit.returncode == 0, explicit.stderr
