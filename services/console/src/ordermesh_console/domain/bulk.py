"""Bulk actions on many orders as the staff commands that do them: one command per shop where a bulk command exists
(with one result per order), else one command per order. Every order gets a result line."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ordermesh_contracts import (
    BulkConfirmPoints,
    BulkUpdateOrders,
    Command,
    HoldOrder,
    MailKind,
    OrderChanges,
    ReleaseOrder,
    SendBulkMail,
    topics,
)
from pydantic import ValidationError

from .actions import FormError
from .roles import Permission

MAX_ORDERS = 10_000
CHUNK = 1000
"""Orders per bulk command (the most SendBulkMail takes)."""


@dataclass(frozen=True)
class Item:
    """One order of a bulk action."""

    order_id: UUID
    shop_id: str
    number: str


BULK_ACTIONS: dict[str, Permission] = {
    "status": Permission.OPERATE, "hold": Permission.OPERATE, "release": Permission.OPERATE,
    "memo": Permission.OPERATE, "add_label": Permission.OPERATE, "remove_label": Permission.OPERATE,
    "carrier": Permission.OPERATE, "mail": Permission.OPERATE, "points": Permission.OPERATE,
}


def parse_item(value: str) -> Item:
    """A selected order as the list's checkbox sends it: `<order id>|<shop id>|<shop order number>`."""
    parts = value.split("|", 2)
    if len(parts) != 3 or not parts[1]:
        raise FormError([f"{value[:80]!r} is not a selected order"])
    try:
        return Item(UUID(parts[0]), parts[1], parts[2])
    except ValueError:
        raise FormError([f"{parts[0][:40]!r} is not an order id"]) from None


def commands_for(action: str, form: Mapping[str, Any], items: list[Item], actor: str) -> list[tuple[str, Command]]:
    """The (topic, command) pairs that carry out a bulk action on `items`; FormError with every reason if it can't."""
    if not items:
        raise FormError(["choose at least one order"])
    if len(items) > MAX_ORDERS:
        raise FormError([f"at most {MAX_ORDERS} orders at once ({len(items)} chosen)"])
    value = str(form.get("value") or "").strip()
    by_shop: dict[str, list[UUID]] = {}
    for item in items:
        by_shop.setdefault(item.shop_id, []).append(item.order_id)
    chunks = [(shop, ids[i:i + CHUNK]) for shop, ids in by_shop.items() for i in range(0, len(ids), CHUNK)]
    try:
        if action in ("hold", "release"):
            return [
                (topics.ORDERS_COMMANDS, _hold_or_release(action, item, value, actor)) for item in items
            ]
        sends: list[tuple[str, Command]] = []
        for shop_id, order_ids in chunks:
            common = {"shop_id": shop_id, "issued_by": actor}
            if action == "mail":
                sends.append((topics.NOTIFY_COMMANDS, SendBulkMail(**common, mail_kind=MailKind(value), order_ids=order_ids)))
            elif action == "points":
                sends.append((topics.POINTS_COMMANDS, BulkConfirmPoints(**common, order_ids=order_ids)))
            elif action in ("status", "memo", "add_label", "remove_label", "carrier"):
                sends.append((topics.ORDERS_COMMANDS, BulkUpdateOrders(**common, order_ids=order_ids, changes=_changes(action, value))))
            else:
                raise FormError([f"no bulk action {action!r}"])
        return sends
    except ValidationError as error:
        raise FormError([f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]) from error
    except ValueError as error:
        raise FormError([str(error)]) from error


def _hold_or_release(action: str, item: Item, reason: str, actor: str) -> Command:
    common = {"shop_id": item.shop_id, "issued_by": actor, "order_id": item.order_id}
    return HoldOrder(**common, reason=reason) if action == "hold" else ReleaseOrder(**common)


def _changes(action: str, value: str) -> OrderChanges:
    if not value:
        raise FormError([f"{action}: give a value"])
    field = {"status": "child_status", "memo": "memo", "carrier": "carrier"}.get(action)
    if field:
        return OrderChanges(**{field: value})
    return OrderChanges(**{"add_labels" if action == "add_label" else "remove_labels": [value]})


def results(items: list[Item], sends: list[tuple[str, Command]], replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per order: its number, whether it worked, and every reason it did not."""
    by_order: dict[UUID, dict[str, Any]] = {}
    for (_, command), reply in zip(sends, replies):
        covered = [command.order_id] if getattr(command, "order_id", None) else list(getattr(command, "order_ids", None) or [])
        if reply.get("type") != "CommandAccepted":
            for order_id in covered:
                by_order[order_id] = {"ok": False, "reason": "; ".join(reply.get("reasons") or [reply.get("type", "?")])}
            continue
        itemised = {r["item"]: r for r in reply.get("results") or []}
        for order_id in covered:
            result = itemised.get(str(order_id))
            by_order[order_id] = (
                {"ok": bool(result["ok"]), "reason": result.get("reason")} if result else {"ok": True, "reason": None}
            )
    return [
        {"order_id": item.order_id, "number": item.number, **by_order.get(item.order_id, {"ok": False, "reason": "not sent"})}
        for item in items
    ]
