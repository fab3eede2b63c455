"""`ordermesh orders set-rules | set-statuses | set-status | enter`: what staff otherwise hand-write as Kafka JSON."""

import asyncio
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import typer
from ordermesh_contracts import (
    Channel,
    ConfigureStatuses,
    EnterOrder,
    SetChildStatus,
    SetRules,
    ShopOrderSubmitted,
    Stage,
    StatusGroup,
    topics,
)
from pydantic import ValidationError

from .client import Connection, send_command
from .orders import ShopOption, StaffOption, app
from .output import print_reply


def _send(command) -> None:
    reply = asyncio.run(send_command(Connection.from_environment(), topics.ORDERS_COMMANDS, command))
    raise typer.Exit(print_reply(reply))


def _json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise typer.BadParameter(f"{path}: not a JSON file ({error})", param_hint=what) from None


def _valid(build, what: str):
    try:
        return build()
    except ValidationError as error:
        reasons = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_url=False)]
        raise typer.BadParameter("; ".join(reasons), param_hint=what) from None


@app.command("set-rules")
def set_rules(rules_file: Path, shop: str = ShopOption, by: str = StaffOption) -> None:
    """Replaces the shop's automatic processing rules with RULES_FILE (JSON: {"groups": [{"name", "enabled",
    "rules": [{"name", "enabled", "conditions": [{"field", "op", "value"}], "actions": [{"type", …}]}]}]});
    an invalid set is refused with every reason and the running rules stay."""
    rule_set = _json_file(rules_file, "RULES_FILE")
    _send(_valid(lambda: SetRules(shop_id=shop, issued_by=by, rule_set=rule_set), "RULES_FILE"))


def _group(text: str) -> StatusGroup:
    stage, _, rest = text.partition("=")
    name, _, children = rest.partition(":")
    if not stage or not name:
        raise typer.BadParameter(f"{text!r}: write STAGE=NAME or STAGE=NAME:CHILD,CHILD", param_hint="--group")
    try:
        stage_value = Stage(stage.strip())
    except ValueError:
        raise typer.BadParameter(f"{stage!r} is not a stage ({', '.join(s.value for s in Stage)})", param_hint="--group") from None
    kids = [child.strip() for child in children.split(",") if child.strip()]
    return _valid(lambda: StatusGroup(stage=stage_value, name=name.strip(), children=kids), "--group")


@app.command("set-statuses")
def set_statuses(
    group: list[str] = typer.Option(
        ..., "--group", help="STAGE=NAME[:CHILD,CHILD,…] in display order, e.g. awaiting_payment=入金待ち:銀行振込待ち,コンビニ払い待ち; repeat."
    ),
    shop: str = ShopOption,
    by: str = StaffOption,
) -> None:
    """Replaces the shop's status groups (one per stage, renamed and ordered) and their child statuses."""
    groups = [_group(text) for text in group]
    _send(_valid(lambda: ConfigureStatuses(shop_id=shop, issued_by=by, groups=groups), "--group"))


@app.command("set-status")
def set_status(order_id: uuid.UUID, status: str, shop: str = ShopOption, by: str = StaffOption) -> None:
    """Sets a child status of the group of the order's current stage (refused with the reason otherwise)."""
    _send(_valid(lambda: SetChildStatus(shop_id=shop, issued_by=by, order_id=order_id, status=status), "STATUS"))


@app.command("enter")
def enter_order(
    order_file: Path,
    channel: Channel = typer.Option(Channel.PHONE, "--channel", help="Where the customer ordered: phone, fax, …"),
    number: Optional[str] = typer.Option(None, "--number", help="The order number (default: the file's, else a new one)."),
    shop: str = ShopOption,
    by: str = StaffOption,
) -> None:
    """Enters an order taken by phone or fax from ORDER_FILE (JSON of a shop order: customer, billing_address,
    deliveries, charges, payment, remarks; shop, channel, number and time are filled in when left out). It goes
    through the same intake as shop orders; the reply names the new order id."""
    raw = _json_file(order_file, "ORDER_FILE")
    if not isinstance(raw, dict):
        raise typer.BadParameter(f"{order_file}: the order must be a JSON object", param_hint="ORDER_FILE")
    stamp = datetime.now(timezone.utc)
    raw = {
        "ordered_at": stamp.isoformat(),
        "currency": "JPY",
        **raw,
        "shop_id": shop,
        "channel": channel.value,
        "external_order_no": number or raw.get("external_order_no") or f"{channel.value.upper()}-{stamp:%Y%m%d-%H%M%S}",
    }
    order = _valid(lambda: ShopOrderSubmitted.model_validate(raw), "ORDER_FILE")
    _send(EnterOrder(shop_id=shop, issued_by=by, order=order))
