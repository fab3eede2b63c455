"""Answering staff commands: accepted with results, or refused with every reason; invalid commands answered too."""

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from ordermesh_contracts import Command, CommandAccepted, CommandRejected, ItemResult, topics

from .consuming import CommandRefusedError, InvalidMessageHook, UnitOfWork
from .outbox import OutgoingMessage


class CommandRefused(CommandRefusedError):
    """Raised by a command handler: nothing it did is kept, and the command is answered with these reasons."""

    def __init__(self, *reasons: str) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = list(reasons)


def accept(
    uow: UnitOfWork,
    command: Command,
    service: str,
    *,
    results: list[ItemResult] | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Answers a command as carried out, in the same transaction as its effect."""
    uow.publish(
        topics.OPS_REPLIES,
        CommandAccepted(
            command_id=command.event_id,
            command_type=command.type,
            service=service,
            results=results or [],
            details=details or {},
            **command.caused(),
        ),
    )


def reject_invalid_commands(service: str) -> InvalidMessageHook:
    """An `on_invalid` hook answering an unreadable or invalid command with the reasons, when its id can be read."""

    def hook(raw: Mapping[str, Any] | None, reasons: list[str]) -> list[OutgoingMessage]:
        command_id: UUID | None = None
        if raw and isinstance(raw.get("event_id"), str):
            try:
                command_id = UUID(raw["event_id"])
            except ValueError:
                command_id = None
        if command_id is None:
            return []
        command_type = raw.get("type") if isinstance(raw.get("type"), str) else None
        reply = CommandRejected(command_id=command_id, command_type=command_type, service=service, reasons=reasons)
        return [OutgoingMessage.of(topics.OPS_REPLIES, reply)]

    return hook
