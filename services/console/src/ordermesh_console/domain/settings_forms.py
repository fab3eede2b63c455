"""Shop settings forms as the staff commands that set them: status groups, rules, shipping fees."""

import json
from collections.abc import Mapping
from typing import Any

from ordermesh_contracts import Command, ConfigureStatuses, SetRules, SetShippingFees, StatusGroup, topics
from pydantic import ValidationError

from .actions import FormError


def _reasons(error: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in error.errors()]


def status_groups(text: str) -> list[StatusGroup]:
    """One group a line: `stage: name | child, child` (e.g. `review: 確認待ち | 電話確認, 住所確認`)."""
    groups, reasons = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        stage, _, rest = line.partition(":")
        name, _, children = rest.partition("|")
        try:
            groups.append(StatusGroup(
                stage=stage.strip(), name=name.strip(), children=[c.strip() for c in children.split(",") if c.strip()]
            ))
        except ValidationError as error:
            reasons += [f"line {number}: {r}" for r in _reasons(error)]
    if reasons:
        raise FormError(reasons)
    return groups


def prefecture_fees(text: str) -> dict[str, int]:
    """One prefecture a line: `北海道=1320`."""
    fees, reasons = {}, []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        prefecture, _, fee = line.partition("=")
        if not fee.strip().isdigit() or not prefecture.strip():
            reasons.append(f"line {number}: write prefecture=fee, e.g. 北海道=1320")
            continue
        fees[prefecture.strip()] = int(fee.strip())
    if reasons:
        raise FormError(reasons)
    return fees


def settings_command(kind: str, form: Mapping[str, Any], actor: str) -> tuple[str, Command]:
    """The command a settings form asks for; FormError with every reason when it can't be one."""
    common = {"shop_id": str(form.get("shop_id") or "").strip(), "issued_by": actor}
    try:
        if kind == "statuses":
            return topics.ORDERS_COMMANDS, ConfigureStatuses(**common, groups=status_groups(str(form.get("groups") or "")))
        if kind == "rules":
            try:
                rule_set = json.loads(str(form.get("rule_set") or ""))
            except ValueError as error:
                raise FormError([f"rule_set: not JSON ({error})"]) from error
            if not isinstance(rule_set, dict):
                raise FormError(["rule_set: must be a JSON object {groups: [...]}"])
            return topics.ORDERS_COMMANDS, SetRules(**common, rule_set=rule_set)
        if kind == "shipping_fees":
            free_from = str(form.get("free_from") or "").strip()
            return topics.ORDERS_COMMANDS, SetShippingFees(
                **common, fee=str(form.get("fee") or "").strip(), free_from=free_from or None,
                remote_island_surcharge=str(form.get("remote_island_surcharge") or "0").strip() or 0,
                by_prefecture=prefecture_fees(str(form.get("by_prefecture") or "")),
            )
    except ValidationError as error:
        raise FormError(_reasons(error)) from error
    raise FormError([f"no settings {kind!r}"])
