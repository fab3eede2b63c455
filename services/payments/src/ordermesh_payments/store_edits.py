"""SQL of order edits in the payments service: each planned amount change, and what it leaves on the payment."""

from uuid import UUID

import asyncpg

from .domain.edits import EditAction, EditPlan


async def saved_plan(conn: asyncpg.Connection, cause_id: UUID) -> EditPlan | None:
    """The plan made earlier for this cause (an edit or a retry), so a redelivery finishes it rather than re-deciding."""
    row = await conn.fetchrow("SELECT * FROM amount_changes WHERE cause_id = $1", cause_id)
    if row is None:
        return None
    return EditPlan(
        action=EditAction(row["action"]), previous_amount=row["previous_amount"], amount=row["amount"],
        outcome=row["outcome"], refunded=row["refunded"], balance_due=row["balance_due"], refund_owed=row["refund_owed"],
        status=row["new_status"], request=row["request"], replaces=row["replaces"], reason=row["failure_reason"],
    )


async def save_plan(conn: asyncpg.Connection, *, cause_id: UUID, order_id: UUID, edit_no: int, plan: EditPlan) -> None:
    """Records the plan for a cause before any gateway call (kept as it is if it exists)."""
    await conn.execute(
        """
        INSERT INTO amount_changes (cause_id, order_id, edit_no, action, outcome, previous_amount, amount, refunded,
            balance_due, refund_owed, replaces, new_status, request, failure_reason)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (cause_id) DO NOTHING
        """,
        cause_id, order_id, edit_no, plan.action.value, plan.outcome, plan.previous_amount, plan.amount, plan.refunded,
        plan.balance_due, plan.refund_owed, plan.replaces, plan.status, plan.request, plan.reason,
    )


async def note_edit(
    conn: asyncpg.Connection, order_id: UUID, *, edit_no: int, edited_total: int, card_token: str | None,
    customer_id: str | None,
) -> None:
    """Remembers the latest edit seen and what a later retry needs to bring the payment to its total."""
    await conn.execute(
        """
        UPDATE payments SET edit_no = greatest(edit_no, $2), edited_total = $3,
            card_token = coalesce($4, card_token), customer_id = coalesce($5, customer_id), updated_at = now()
        WHERE order_id = $1
        """,
        order_id, edit_no, edited_total, card_token, customer_id,
    )


async def settle_change(conn: asyncpg.Connection, cause_id: UUID, order_id: UUID, plan: EditPlan) -> None:
    """Records what became of a planned change and, when it was done, the payment's new amount and balances."""
    failed = plan.action is EditAction.FAIL
    await conn.execute(
        """
        UPDATE amount_changes SET status = $2, failure_reason = $3, settled_at = now() WHERE cause_id = $1
        """,
        cause_id, "failed" if failed else "done", plan.reason if failed else None,
    )
    if failed:
        await conn.execute(
            "UPDATE payments SET amount_change_failure = $2, updated_at = now() WHERE order_id = $1", order_id, plan.reason
        )
        return
    await conn.execute(
        """
        UPDATE payments SET amount = $2, balance_due = $3, refund_owed = $4, status = coalesce($5, status),
            amount_change_failure = NULL, updated_at = now()
        WHERE order_id = $1
        """,
        order_id, plan.amount, plan.balance_due, plan.refund_owed, plan.status,
    )


async def add_refunded_for_edit(conn: asyncpg.Connection, order_id: UUID, amount: int) -> None:
    """Adds a refund made because an edit lowered the total (it settles money rather than leaving any owed)."""
    await conn.execute(
        """
        UPDATE payments SET refunded_amount = refunded_amount + $2, refunded_for_edits = refunded_for_edits + $2,
            updated_at = now()
        WHERE order_id = $1
        """,
        order_id, amount,
    )


async def amount_changes(conn: asyncpg.Connection | asyncpg.Pool, order_id: UUID) -> list[dict]:
    """The order's amount changes for staff, oldest first."""
    rows = await conn.fetch(
        """
        SELECT cause_id, edit_no, action, outcome, previous_amount, amount, refunded, balance_due, refund_owed, status,
            failure_reason, requested_at, settled_at
        FROM amount_changes WHERE order_id = $1 ORDER BY requested_at
        """,
        order_id,
    )
    return [dict(row) for row in rows]
