"""Stand-ins for unit tests of one function: a Kafka record as the consumer sees it, and a statement counter for
asyncpg's query logger (the statement budgets per message type)."""

from dataclasses import dataclass, field


@dataclass
class FakeRecord:
    """The fields of an aiokafka ConsumerRecord the consumer reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


@dataclass(eq=False)
class StatementCounter:
    """Counts statements and the transactions they make (a BEGIN…COMMIT block is one; any other statement is one)."""

    statements: list[str] = field(default_factory=list)
    transactions: int = 0
    _in_block: bool = False

    def __call__(self, record) -> None:
        query = record.query.strip().upper()
        self.statements.append(query)
        if query.startswith("BEGIN"):
            self._in_block = True
        elif query.startswith(("COMMIT", "ROLLBACK")):
            self._in_block = False
            self.transactions += 1
        elif not self._in_block:
            self.transactions += 1

    def reset(self) -> None:
        """Forgets what was counted so far."""
        self.statements.clear()
        self.transactions = 0
