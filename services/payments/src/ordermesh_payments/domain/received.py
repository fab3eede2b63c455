"""Money received outside a card gateway: prepaid references, balances, due dates, bank statements, cash on delivery."""

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID


def payment_reference(order_id: UUID) -> str:
    """The reference a customer quotes when paying a prepaid order: short, upper-case, derived from the order."""
    return f"OM-{order_id.hex[:12].upper()}"


def due_date(accepted_at: datetime, days: int) -> date:
    """The last day to pay an order accepted at `accepted_at`."""
    return (accepted_at + timedelta(days=days)).date()


def balance_after(amount_due: int, received_total: int) -> int:
    """What is still due after `received_total`: > 0 under-paid, < 0 over-paid (refund owed), 0 settled."""
    return amount_due - received_total


def is_overdue(due: date, today: date, balance: int) -> bool:
    """Whether money is still due after the due date has passed."""
    return balance > 0 and today > due


@dataclass(frozen=True)
class StatementRow:
    """One credit line of a bank statement."""

    transaction_id: str
    booked_on: date
    reference: str
    amount: int


STATEMENT_COLUMNS = ("transaction_id", "date", "reference", "amount")


def parse_bank_statement(text: str) -> tuple[list[StatementRow], list[str]]:
    """The statement's rows, and a reason for each line that cannot be read (by line number)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in STATEMENT_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return [], [f"header lacks column(s) {', '.join(missing)}"]
    rows, problems = [], []
    for number, raw in enumerate(reader, start=2):
        try:
            amount = int((raw["amount"] or "").replace(",", "").strip())
            booked_on = date.fromisoformat((raw["date"] or "").strip())
        except ValueError:
            problems.append(f"line {number}: amount must be whole minor units and date YYYY-MM-DD")
            continue
        transaction_id, reference = (raw["transaction_id"] or "").strip(), (raw["reference"] or "").strip().upper()
        if not transaction_id or not reference or amount <= 0:
            problems.append(f"line {number}: transaction_id, reference and a positive amount are required")
            continue
        rows.append(StatementRow(transaction_id, booked_on, reference, amount))
    return rows, problems
