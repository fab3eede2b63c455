"""The orders handlers on a real PostgreSQL: every staff command that changes an order runs the shop's rules after
the change, once-only rules stay fired, and a rule's hold never undoes the release staff just made."""

import json
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from ordermesh_contracts import (
    AddTask,
    BulkUpdateOrders,
    CloseTask,
    ConfigureStatuses,
    ConfirmAddress,
    ConfirmDeliveryDate,
    HoldOrder,
    OrderChanges,
    ReleaseOrder,
    ResumeAuto,
    SetOrderStage,
    SetRules,
    ShopOrderSubmitted,
    Stage,
    StatusGroup,
    order_id_for,
    topics,
)
from ordermesh_orders import command_handlers, handlers
from ordermesh_servicekit.commands import CommandRefused
from ordermesh_servicekit.consuming import MessageContext

DATA = Path(__file__).parent / "data"
SHOP = "kyoto-tea"


async def run(pool, message, handler, topic=topics.ORDERS_COMMANDS) -> None:
    await handler(message, MessageContext(pool, message.event_id, topic, log=None))


async def command(pool, message) -> None:
    await run(pool, message, command_handlers.COMMAND_HANDLERS[type(message)])


def staff(**fields):
    return {"shop_id": SHOP, "issued_by": "staff:test", **fields}


async def take_in(pool, number: int = 1, **changes) -> UUID:
    raw = json.loads((DATA / "shop_order_card.json").read_text(encoding="utf-8"))
    raw.update(event_id=str(uuid4()), external_order_no=f"R-{number}")
    for path, value in changes.items():
        target = raw
        *parents, leaf = path.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[leaf] = value
    order = ShopOrderSubmitted.model_validate(raw)
    await run(pool, order, handlers.on_shop_order_submitted, topics.SHOP_ORDERS)
    return order_id_for(SHOP, order.channel.value, order.external_order_no)


def rule(name, conditions, actions):
    return {"name": name, "conditions": conditions, "actions": actions}


async def set_rules(pool, *rules) -> None:
    await command(pool, SetRules(**staff(rule_set={"groups": [{"name": "desk", "rules": list(rules)}]})))


async def order_row(pool, order_id):
    return await pool.fetchrow("SELECT stage, mode, held_from, child_status, labels, memo FROM orders WHERE order_id = $1", order_id)


async def history(pool, order_id, cause_id=None):
    rows = await pool.fetch(
        "SELECT what, details, actor FROM order_history WHERE order_id = $1 AND ($2::uuid IS NULL OR cause_id = $2) ORDER BY id",
        order_id, cause_id,
    )
    return [(r["what"], json.loads(r["details"])) for r in rows]


async def published(pool, kind: str) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.ORDERS_EVENTS)
    return [m for m in (json.loads(bytes(r["payload"])) for r in rows) if m["type"] == kind]


LABEL_RULE = rule("label", [], [{"type": "add_label", "label": "checked-by-rule"}])


async def _hold(pool, order_id):
    await command(pool, HoldOrder(**staff(order_id=order_id, reason="customer called")))


async def _manual(pool, order_id):
    await command(pool, SetOrderStage(**staff(order_id=order_id, stage=Stage.AWAITING_PAYMENT)))


async def _task(pool, order_id):
    await command(pool, AddTask(**staff(order_id=order_id, note="call back")))
    return await pool.fetchval("SELECT max(task_id) FROM order_tasks WHERE order_id = $1 AND kind = 'staff'", order_id)


async def _nothing(pool, order_id):
    return None


COMMANDS = {
    "hold": (_nothing, lambda o, _: HoldOrder(**staff(order_id=o, reason="wait"))),
    "release": (_hold, lambda o, _: ReleaseOrder(**staff(order_id=o))),
    "set stage": (_nothing, lambda o, _: SetOrderStage(**staff(order_id=o, stage=Stage.READY_TO_SHIP))),
    "resume auto": (_manual, lambda o, _: ResumeAuto(**staff(order_id=o))),
    "confirm address": (_nothing, lambda o, _: ConfirmAddress(**staff(order_id=o))),
    "confirm delivery date": (_nothing, lambda o, _: ConfirmDeliveryDate(**staff(order_id=o))),
    "add task": (_nothing, lambda o, _: AddTask(**staff(order_id=o, note="check the gift message"))),
    "close task": (_task, lambda o, task_id: CloseTask(**staff(order_id=o, task_id=task_id))),
    "bulk update": (_nothing, lambda o, _: BulkUpdateOrders(**staff(order_ids=[o], changes=OrderChanges(memo="bulk")))),
}


@pytest.mark.parametrize("name", list(COMMANDS))
async def test_every_staff_command_that_changes_an_order_runs_the_rules_after_it(pool, name) -> None:
    order_id = await take_in(pool)
    prepare, make = COMMANDS[name]
    prepared = await prepare(pool, order_id)
    await set_rules(pool, LABEL_RULE)  # rules saved after intake: only a later change can fire them
    assert (await order_row(pool, order_id))["labels"] == []
    sent = make(order_id, prepared)
    await command(pool, sent)
    assert (await order_row(pool, order_id))["labels"] == ["checked-by-rule"]
    assert ("rule fired", {"rule": "desk/label"}) in await history(pool, order_id, sent.event_id)


async def test_a_rule_on_the_child_status_fires_after_a_bulk_update_once_and_only_once(pool) -> None:
    first, second, untouched = [await take_in(pool, n) for n in (1, 2, 3)]
    await command(pool, ConfigureStatuses(**staff(groups=[StatusGroup(stage="review", name="受付", children=["要確認"])])))
    await set_rules(pool, rule(
        "needs a look", [{"field": "child_status", "op": "eq", "value": "要確認"}],
        [{"type": "add_task", "note": "look at it", "blocking": True}, {"type": "add_memo", "text": "flagged by the desk"}],
    ))
    bulk = BulkUpdateOrders(**staff(order_ids=[first, second], changes=OrderChanges(child_status="要確認")))
    await command(pool, bulk)
    again = BulkUpdateOrders(**staff(order_ids=[first], changes=OrderChanges(child_status="要確認", memo="again")))
    await command(pool, again)

    for order_id in (first, second):
        assert ("rule fired", {"rule": "desk/needs a look"}) in await history(pool, order_id, bulk.event_id)
        tasks = await pool.fetch("SELECT note, blocking FROM order_tasks WHERE order_id = $1 AND kind = 'staff'", order_id)
        assert [(t["note"], t["blocking"]) for t in tasks] == [("look at it", True)]
    assert [w for w, _ in await history(pool, first, again.event_id)] == ["bulk update"]
    assert (await order_row(pool, first))["memo"] == "flagged by the desk\nagain"
    assert ("rule fired", {"rule": "desk/needs a look"}) not in await history(pool, untouched)


async def test_a_label_a_bulk_update_adds_can_hold_the_order_and_the_hold_is_announced(pool) -> None:
    order_id = await take_in(pool)
    await set_rules(pool, rule("vip hold", [{"field": "label", "op": "contains", "value": "vip"}], [{"type": "hold", "reason": "vip"}]))
    bulk = BulkUpdateOrders(**staff(order_ids=[order_id], changes=OrderChanges(add_labels=["vip"])))
    await command(pool, bulk)
    row = await order_row(pool, order_id)
    assert (row["stage"], row["held_from"]) == ("on_hold", "review")
    [progressed] = [m for m in await published(pool, "OrderProgressed") if m["order_id"] == str(order_id)]
    assert (progressed["from_stage"], progressed["to_stage"], progressed["causation_id"]) == ("review", "on_hold", str(bulk.event_id))


async def test_a_hold_rule_firing_on_a_release_does_not_hold_the_order_staff_just_released(pool) -> None:
    order_id = await take_in(pool)
    await _hold(pool, order_id)
    await set_rules(pool, rule("card hold", [{"field": "payment_method", "op": "eq", "value": "card"}], [
        {"type": "hold", "reason": "check card orders"}, {"type": "add_label", "label": "card-checked"},
    ]))
    release = ReleaseOrder(**staff(order_id=order_id))
    await command(pool, release)
    row = await order_row(pool, order_id)
    assert (row["stage"], row["labels"]) == ("review", ["card-checked"])
    assert await history(pool, order_id, release.event_id) == [
        ("ReleaseOrder", {}),
        ("rule fired", {"rule": "desk/card hold"}),
        ("rule action skipped", {"rule": "desk/card hold", "reason": "staff released the order by hand in this command"}),
        ("progressed", {"from_stage": "on_hold", "to_stage": "review"}),
    ]
    await command(pool, AddTask(**staff(order_id=order_id, note="later change")))
    assert (await order_row(pool, order_id))["stage"] == "review"


async def test_a_hold_rule_on_another_command_holds_the_order_where_it_stops(pool) -> None:
    order_id = await take_in(pool)
    await set_rules(pool, rule("card hold", [{"field": "payment_method", "op": "eq", "value": "card"}], [{"type": "hold"}]))
    await command(pool, SetOrderStage(**staff(order_id=order_id, stage=Stage.READY_TO_SHIP)))
    row = await order_row(pool, order_id)
    assert (row["stage"], row["held_from"], row["mode"]) == ("on_hold", "ready_to_ship", "manual")


NO_POINTS = {"charges__points_used": 0, "charges__total": 9780}


async def test_a_blocking_task_a_rule_opens_keeps_the_order_in_review_in_the_same_command(pool) -> None:
    without_rules, with_rules = await take_in(pool, 1, **NO_POINTS), await take_in(pool, 2, **NO_POINTS)
    await command(pool, ConfirmDeliveryDate(**staff(order_id=without_rules)))
    assert (await order_row(pool, without_rules))["stage"] == "awaiting_payment"
    await set_rules(pool, rule("check", [], [{"type": "add_task", "note": "look", "blocking": True}]))
    await command(pool, ConfirmDeliveryDate(**staff(order_id=with_rules)))
    assert (await order_row(pool, with_rules))["stage"] == "review"


async def test_a_hold_rule_holds_the_order_at_the_stage_the_command_moved_it_to(pool) -> None:
    order_id = await take_in(pool, 1, **NO_POINTS)
    await set_rules(pool, rule("card hold", [{"field": "payment_method", "op": "eq", "value": "card"}], [{"type": "hold"}]))
    confirm = ConfirmDeliveryDate(**staff(order_id=order_id))
    await command(pool, confirm)
    row = await order_row(pool, order_id)
    assert (row["stage"], row["held_from"]) == ("on_hold", "awaiting_payment")
    moves = [(m["from_stage"], m["to_stage"]) for m in await published(pool, "OrderProgressed") if m["causation_id"] == str(confirm.event_id)]
    assert moves == [("review", "awaiting_payment"), ("awaiting_payment", "on_hold")]


async def test_a_refused_command_leaves_no_firing_and_no_history(pool) -> None:
    order_id = await take_in(pool)
    await set_rules(pool, LABEL_RULE)
    before = await history(pool, order_id)
    with pytest.raises(CommandRefused, match="not on hold"):
        await command(pool, ReleaseOrder(**staff(order_id=order_id)))
    assert await history(pool, order_id) == before
    assert await pool.fetchval("SELECT count(*) FROM order_rule_firings WHERE order_id = $1", order_id) == 0


async def test_a_relay_area_order_gets_the_relay_task_and_fact_at_intake(pool) -> None:
    await set_rules(pool, rule("relay", [{"field": "relay_area", "op": "eq", "value": True}], [{"type": "add_label", "label": "relay"}]))
    sado = await take_in(pool, 1, deliveries__0__address__postal_code="952-0011", deliveries__0__address__prefecture="新潟県",
                         deliveries__0__address__city="佐渡市")
    tokyo = await take_in(pool, 2)
    kinds = {o: [r["kind"] for r in await pool.fetch("SELECT kind FROM order_tasks WHERE order_id = $1", o)] for o in (sado, tokyo)}
    assert "relay_area" in kinds[sado] and "relay_area" not in kinds[tokyo]
    assert (await order_row(pool, sado))["labels"] == ["relay"] and (await order_row(pool, tokyo))["labels"] == []
    assert (await order_row(pool, sado))["stage"] == "review"
